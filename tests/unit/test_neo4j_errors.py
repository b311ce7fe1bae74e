"""What the Neo4j store tells users when the server is old, unreachable or refuses them, and
which failures it retries. The errors are the driver's own, as it builds them from a server
response; no server (and no fake driver) is involved."""

from __future__ import annotations

import pytest

pytest.importorskip("neo4j", reason="the neo4j driver is not installed (evergraph[neo4j])")

from neo4j.exceptions import (
    IncompleteCommit,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from evergraph.errors import StoreError, StoreFormatError, UsageError
from evergraph.graph.store.neo4j_errors import (
    check_version,
    is_transient,
    translate,
)

WHERE = "neo4j://db:7687"


def server_error(code: str) -> Neo4jError:
    return Neo4jError._hydrate_neo4j(code=code, message="the server says no")


@pytest.mark.parametrize("version", ["5.18.0", "5.26.6", "5.26.21-aura", "2025.01.0", "2026.3.1"])
def test_supported_versions(version: str) -> None:
    check_version(version, WHERE)


@pytest.mark.parametrize("version", ["4.4.30", "4.0.0", "3.5.35"])
def test_neo4j_4_is_refused_for_its_syntax(version: str) -> None:
    with pytest.raises(StoreFormatError, match=r"cannot use a 4\.x server") as info:
        check_version(version, WHERE)
    assert WHERE in info.value.message
    assert info.value.fix and "5.26" in info.value.fix


@pytest.mark.parametrize("version", ["5.0.0", "5.13.0", "5.17.0"])
def test_neo4j_5_without_vector_support_is_refused(version: str) -> None:
    with pytest.raises(StoreFormatError, match="lacks the vector-index support"):
        check_version(version, WHERE)


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(StoreFormatError, match="unknown Neo4j version"):
        check_version("dev", WHERE)


def test_wrong_credentials_name_the_settings() -> None:
    error = translate(server_error("Neo.ClientError.Security.Unauthorized"), WHERE)
    assert isinstance(error, UsageError)
    assert error.fix and "EVERGRAPH_STORE" in error.fix and "EVERGRAPH_NEO4J__PASSWORD" in error.fix


def test_unreachable_server_names_the_uri_and_the_fix() -> None:
    for cause in (ServiceUnavailable("Couldn't connect"), SessionExpired("gone")):
        error = translate(cause, WHERE)
        assert isinstance(error, StoreError)
        assert WHERE in error.message and "nothing of the failed operation" in error.message
        assert error.fix and "docker compose up -d neo4j" in error.fix


def test_a_lost_commit_is_not_called_rolled_back() -> None:
    error = translate(IncompleteCommit("lost"), WHERE)
    assert isinstance(error, StoreError) and "may or may not" in error.message


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("Neo.ClientError.Database.DatabaseNotFound", UsageError, "no such database"),
        ("Neo.ClientError.Security.Forbidden", UsageError, "may not"),
        ("Neo.TransientError.Transaction.DeadlockDetected", StoreError, "transiently"),
        ("Neo.ClientError.Schema.ConstraintValidationFailed", UsageError, "rejected"),
    ],
)
def test_server_errors_users_can_act_on(code: str, kind: type[Exception], words: str) -> None:
    error = translate(server_error(code), WHERE)
    assert isinstance(error, kind) and words in str(error)


def test_bugs_keep_their_traceback() -> None:
    assert translate(server_error("Neo.ClientError.Statement.SyntaxError"), WHERE) is None


def test_only_transient_failures_are_retried() -> None:
    assert is_transient(server_error("Neo.TransientError.Transaction.DeadlockDetected"))
    assert is_transient(ServiceUnavailable("down"))
    assert is_transient(SessionExpired("gone"))
    assert not is_transient(IncompleteCommit("unknown outcome"))  # could apply a write twice
    assert not is_transient(server_error("Neo.ClientError.Security.Unauthorized"))
    assert not is_transient(server_error("Neo.ClientError.Statement.SyntaxError"))
    assert not is_transient(RuntimeError("boom"))
