"""Tenancy and safety on a real server: keys per namespace, isolation, size limits, rate
limits, clear 4xx errors and no stack traces."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from evergraph.agents.ace_types import Feedback
from evergraph.client import ClientError, EvergraphClient
from evergraph.errors import (
    EvergraphError,
    PlaybookConflictError,
    ServiceError,
    StoreError,
    UsageError,
)
from evergraph.retrieval.index import Passage, index_passages
from evergraph.server.app import create_app
from evergraph.server.errors import status_of
from evergraph.server.keys import KEY_FILE, KeyRing
from evergraph.server.schemas import DocumentIn, JobState
from evergraph.server.services import ServerOptions
from tests.unit.server_fixtures import doc, running, services, serving

NS = "/v1/namespaces"


def test_a_key_for_one_namespace_cannot_read_or_write_another(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / KEY_FILE)
    _, alice = ring.add("alice")
    _, mallory = ring.add("mallory")
    with running(tmp_path) as (url, _):
        with EvergraphClient(url, namespace="alice", api_key=alice) as eg:
            job = eg.wait(eg.add_documents([DocumentIn.model_validate(doc(1))]), timeout=60)
            assert job.state is JobState.DONE
            assert eg.facts("Telescope T1").entities
        attacker = httpx.Client(
            base_url=f"{url}{NS}/alice", headers={"Authorization": f"Bearer {mallory}"}
        )
        attempts = [
            attacker.get("/facts", params={"entity": "Telescope T1"}),
            attacker.post("/search", json={"query": "galaxy"}),
            attacker.post("/documents", json={"documents": [doc(2)]}),
            attacker.get(f"/jobs/{job.id}"),
            attacker.post("/ask", json={"question": "What did Telescope T1 observe?"}),
            attacker.get("/playbooks/p/context", params={"task": "x"}),
            attacker.post("/playbooks/p/outcomes", json={"task": "x", "answer": "y"}),
        ]
        assert [r.status_code for r in attempts] == [403] * len(attempts)
        assert "not for namespace 'alice'" in attempts[0].json()["error"]
        # mallory's own namespace is reachable, and does not see alice's data or jobs
        with EvergraphClient(url, namespace="mallory", api_key=mallory) as own:
            assert own.search("galaxy G1").hits == []
            with pytest.raises(ClientError) as err:
                own.job(job.id)
            assert err.value.status == 404
        anonymous = httpx.get(f"{url}{NS}/alice/facts", params={"entity": "Telescope T1"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        forged = httpx.get(
            f"{url}{NS}/alice/facts",
            params={"entity": "Telescope T1"},
            headers={"Authorization": f"Bearer {alice[:-4]}AAAA"},
        )
        assert forged.status_code == 401
        (key,) = ring.list("alice")
        ring.revoke(key.id)
        revoked = httpx.get(
            f"{url}{NS}/alice/facts",
            params={"entity": "Telescope T1"},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert revoked.status_code == 401
    secret = alice.rsplit("_", 1)[1]
    assert secret not in (tmp_path / KEY_FILE).read_text()  # only hashes at rest


def test_namespaces_have_separate_stores_without_keys(tmp_path: Path) -> None:
    with running(tmp_path) as (url, _):
        with EvergraphClient(url, namespace="one") as one:
            one.wait(one.add_documents([DocumentIn.model_validate(doc(1))]), timeout=60)
        with EvergraphClient(url, namespace="two") as two:
            assert two.search("Telescope T1 galaxy G1").hits == []
            with pytest.raises(ClientError) as err:
                two.facts("Telescope T1")
            assert err.value.status == 404
    assert sorted(p.name for p in (tmp_path / "namespaces").glob("*.db")) == [
        "one.checkpoints.db",
        "one.db",
        "two.db",
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"{NS}/..%2F..%2Fetc/facts?entity=x",
        f"{NS}/UPPER/facts?entity=x",
        f"{NS}/a.b/facts?entity=x",
        f"{NS}/{'x' * 64}/facts?entity=x",
        f"{NS}/-lead/facts?entity=x",
    ],
)
def test_invalid_namespaces_are_refused(tmp_path: Path, path: str) -> None:
    with running(tmp_path) as (url, _):
        response = httpx.get(url + path)
    assert response.status_code in (404, 422), response.text
    assert not any((tmp_path / "namespaces").glob("*.db"))  # no store was opened


def test_malformed_and_oversized_inputs_get_clear_4xx(tmp_path: Path) -> None:
    with running(tmp_path, max_body=4096) as (url, _):
        http = httpx.Client(base_url=f"{url}{NS}/app")
        bad_json = http.post(
            "/search", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 422 and bad_json.json()["error"].startswith(
            "invalid request"
        )
        wrong_type = http.post("/search", json={"query": "x", "k": "many"})
        assert wrong_type.status_code == 422 and "body.k" in wrong_type.json()["error"]
        too_many = http.post("/search", json={"query": "x", "k": 10_000})
        assert too_many.status_code == 422
        empty_docs = http.post("/documents", json={"documents": []})
        assert empty_docs.status_code == 422
        no_text = http.post("/documents", json={"documents": [{"title": "t"}]})
        assert no_text.status_code == 422 and "text" in no_text.json()["error"]
        bad_date = http.get("/facts", params={"entity": "x", "as_of": "yesterday"})
        assert bad_date.status_code == 422 and "as_of" in bad_date.json()["error"]
        # blank text is refused by the published schema (a pattern), like any invalid field
        blank_query = http.post("/search", json={"query": " \n "})
        assert blank_query.status_code == 422 and "body.query" in blank_query.json()["error"]
        blank = http.post("/ask", json={"question": "   "})
        assert blank.status_code == 422 and "body.question" in blank.json()["error"]
        big = {"documents": [{"text": "x" * 5000}]}
        declared = http.post("/documents", json=big)
        assert declared.status_code == 413 and "4096 bytes" in declared.json()["error"]

        def chunks() -> object:
            for _ in range(10):
                yield b" " * 1000

        streamed = http.post(
            "/search", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        for response in (bad_json, wrong_type, declared, streamed):
            assert "Traceback" not in response.text


def test_a_version_beyond_the_stores_integers_is_a_422(tmp_path: Path) -> None:
    """SQLite integers stop at 2**63 - 1: a larger `since` used to overflow into a 500."""
    with running(tmp_path) as (url, _), EvergraphClient(url, namespace="app") as eg:
        eg.record_outcome("solver", "Which galaxy did T1 observe?", "G1", Feedback(success=True))
        history = f"{url}{NS}/app/playbooks/solver/history"
        assert httpx.get(history, params={"since": 2**63 - 1}).json() == []
        response = httpx.get(history, params={"since": 2**63})
    assert response.status_code == 422 and "query.since" in response.json()["error"]


def test_reading_playbooks_never_written_keeps_nothing_in_memory(tmp_path: Path) -> None:
    """Names are caller input and each playbook memory holds a compiled agent graph (about
    40 KB and 40 ms): reading unknown names once kept one each, for the server's lifetime."""
    with running(tmp_path) as (url, svc):
        http = httpx.Client(base_url=f"{url}{NS}/app")
        for i in range(5):
            response = http.get(f"/playbooks/guess{i}/context", params={"task": "x"})
            assert response.status_code == 200 and response.json()["bullet_ids"] == []
        assert svc.tenants.get("app").playbooks == {}


def test_pages_reaching_loopback_by_dns_rebinding_are_refused(tmp_path: Path) -> None:
    """Keys are optional on loopback, so a web page whose domain resolves to 127.0.0.1 could
    read and write every namespace (only /mcp, by the MCP SDK, checked Host and Origin)."""
    with running(tmp_path) as (url, _):
        rebound = httpx.get(f"{url}{NS}/app/playbooks", headers={"Host": "evil.example"})
        cross = httpx.post(
            f"{url}{NS}/app/search", json={"query": "x"}, headers={"Origin": "http://evil.example"}
        )
        local = httpx.get(f"{url}{NS}/app/playbooks", headers={"Origin": url})
    assert rebound.status_code == 421 and "'evil.example'" in rebound.json()["error"]
    assert cross.status_code == 403 and "'http://evil.example'" in cross.json()["error"]
    assert local.status_code == 200


@pytest.mark.parametrize("date", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_date_out_of_range_in_utc_is_a_422(tmp_path: Path, date: str) -> None:
    """Year 10000 (or 0) once in UTC: accepted, it was stored out of range, and from then on
    every read of the namespace (facts, search, ask) was a 500."""
    with running(tmp_path) as (url, _):
        http = httpx.Client(base_url=f"{url}{NS}/app")
        response = http.post("/documents", json={"documents": [doc(1) | {"date": date}]})
    assert response.status_code == 422, response.text
    assert "documents.0.date" in response.json()["error"] and "UTC" in response.json()["error"]


def test_feedback_is_bounded_like_the_task_and_answer(tmp_path: Path) -> None:
    """Feedback's texts go into the reflector's prompt as the task and answer do, but were
    taken up to the body limit (8 MiB by default)."""
    outcome = {"task": "t", "answer": "a", "feedback": {"environment": "x" * 20_001}}
    with running(tmp_path) as (url, _):
        response = httpx.post(f"{url}{NS}/app/playbooks/p/outcomes", json=outcome)
    assert response.status_code == 422 and "body.feedback" in response.json()["error"]


def test_a_bug_is_a_500_without_a_stack_trace(tmp_path: Path) -> None:
    class Broken:
        model = "broken"
        usage = None

        async def structured(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("secret internals /etc/passwd")

    svc = services(tmp_path)
    svc.llm = Broken()  # type: ignore[assignment]
    with serving(create_app(svc)) as url:
        index = svc.tenants.get("app")
        index_passages(
            index.store, svc.embedder, [Passage("T1", "Telescope T1 observed galaxy G1.")]
        )
        response = httpx.post(f"{url}{NS}/app/ask", json={"question": "What did T1 observe?"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal error; the server log has the details",
        "fix": None,
    }
    assert "secret" not in response.text and "Traceback" not in response.text


def test_requests_over_the_rate_are_told_when_to_retry(tmp_path: Path) -> None:
    with running(tmp_path, rate=0.01, burst=3) as (url, _):
        statuses = [httpx.post(f"{url}{NS}/app/search", json={"query": "x"}) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert "too many requests" in statuses[-1].json()["error"]


def test_guessing_keys_is_rate_limited_per_client(tmp_path: Path) -> None:
    key, _ = KeyRing(tmp_path / KEY_FILE).add("app")
    with running(tmp_path, rate=0.01, burst=2) as (url, _):
        guesses = [
            httpx.get(
                f"{url}{NS}/app/facts",
                params={"entity": "x"},
                headers={"Authorization": f"Bearer eg_{key.id}_wrong{n}"},
            ).status_code
            for n in range(4)
        ]
    assert guesses == [401, 401, 429, 429]


def test_listening_beyond_loopback_needs_keys(tmp_path: Path) -> None:
    svc = services(tmp_path, host="0.0.0.0")
    with pytest.raises(UsageError, match="without API keys"):
        svc.check_exposure()
    KeyRing(tmp_path / KEY_FILE).add("app")
    svc.check_exposure()  # keys exist now
    assert services(tmp_path, host="127.0.0.1").options == ServerOptions(host="127.0.0.1")


def test_beyond_loopback_revoking_the_last_key_does_not_open_the_server(tmp_path: Path) -> None:
    """Keys were required only while an active key existed, so revoking the last one (say,
    a leaked one) left a server on 0.0.0.0 open to anyone, without a restart."""
    ring = KeyRing(tmp_path / KEY_FILE)
    key, token = ring.add("app")
    svc = services(tmp_path, host="0.0.0.0")
    svc.check_exposure()
    with serving(create_app(svc)) as url:
        playbooks = f"{url}{NS}/app/playbooks"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(playbooks, headers=auth).status_code == 200
        ring.revoke(key.id)
        anonymous = httpx.get(playbooks)
    assert anonymous.status_code == 401 and "requires an API key" in anonymous.json()["error"]


def test_metrics_and_the_api_docs_need_a_key_when_the_api_does(tmp_path: Path) -> None:
    """/metrics (traffic by route, token counts) and the schema and docs pages answered
    anyone, even on a server that requires keys; only liveness and readiness stay open, for
    load balancers and orchestrators."""
    _, token = KeyRing(tmp_path / KEY_FILE).add("app")
    guarded = ["/metrics", "/openapi.json", "/docs", "/redoc"]
    with running(tmp_path) as (url, _):
        namespaced = httpx.get(f"{url}{NS}/app/playbooks")
        anonymous = [httpx.get(url + path) for path in guarded]
        forged = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer eg_0_forged"})
        auth = {"Authorization": f"Bearer {token}"}
        keyed = [httpx.get(url + path, headers=auth).status_code for path in guarded]
        health = [httpx.get(url + path).status_code for path in ("/healthz", "/readyz")]
    assert namespaced.status_code == 401
    for response in anonymous:
        assert response.status_code == 401, response.request.url
        assert response.json() == namespaced.json()
        assert response.headers["www-authenticate"] == "Bearer"
    assert forged.status_code == 401 and "not valid" in forged.json()["error"]
    assert keyed == [200] * len(guarded)
    assert health == [200, 200]


def test_runtime_failures_map_to_statuses() -> None:
    assert status_of(PlaybookConflictError("busy")) == 409
    assert status_of(StoreError("disk full")) == 503
    assert status_of(ServiceError("model down")) == 503
    assert status_of(UsageError("bad")) == 400
    assert status_of(EvergraphError("other")) == 500
