"""Schemathesis against the published OpenAPI schema of a real server: generated requests
(valid and invalid) never get a 5xx, and every response fits the schema it documents.
Bounded: a few examples per operation. Namespaces are pinned to the one the key opens
(invalid namespaces are tested in test_server_security.py). Schemathesis' own pytest loader
does not run under pytest 9, so each operation's strategy is driven by Hypothesis directly."""

from __future__ import annotations

from pathlib import Path

import schemathesis
import schemathesis.specs.openapi.object_authorization
from hypothesis import HealthCheck, given, settings

from evergraph.server.keys import KEY_FILE, KeyRing
from tests.unit.server_fixtures import running

# The import above is one a check makes lazily. Made there, deep in Hypothesis' stack, pytest's
# assertion rewriting of it (schemathesis is a pytest plugin) can hit CPython 3.11's
# "AST constructor recursion depth mismatch"; imported here, it is rewritten up front.
EXAMPLES = 8  # per operation


def test_the_api_keeps_its_published_contract(tmp_path: Path) -> None:
    """With keys required; each case is sent with a valid key for its namespace, and the
    checks' own requests with generated keys must be refused (401/403)."""
    _, token = KeyRing(tmp_path / KEY_FILE).add("app")
    with running(tmp_path, rate=100_000, burst=100_000) as (url, _):
        auth = {"Authorization": f"Bearer {token}"}
        api = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=auth)
        operations = [result.ok() for result in api.get_all_operations()]
        assert len(operations) >= 12
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                if "namespace" in (case.path_parameters or {}):
                    case.path_parameters["namespace"] = "app"
                case.headers = {**(case.headers or {}), **auth}
                case.call_and_validate()

            conforms()
