"""The MCP server: every tool through the SDK's in-process client, and over streamable HTTP
on a real server with keys (a key for another namespace gets an error result, no key a 401)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from evergraph.server.keys import KEY_FILE, KeyRing
from evergraph.server.mcp import build_mcp
from evergraph.server.services import Services
from tests.unit.server_fixtures import doc, running, services

RPC = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
TOOLS = {
    "add_documents",
    "job_status",
    "facts",
    "search",
    "ask",
    "list_playbooks",
    "playbook_context",
    "record_outcome",
    "playbook_history",
}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def ingest(client: Client, namespace: str) -> dict[str, Any]:
    job = await call(client, "add_documents", namespace=namespace, documents=[doc(1), doc(2)])
    deadline = time.monotonic() + 60
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        job = await call(client, "job_status", namespace=namespace, job_id=job["id"])
    return job


async def in_process(svc: Services) -> None:
    await svc.load()
    await svc.jobs.start()
    try:
        async with Client(build_mcp(svc)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            job = await ingest(client, "app")
            assert job["state"] == "done" and job["totals"]["facts"] == 2
            facts = await call(client, "facts", namespace="app", entity="Telescope T1")
            (entity,) = facts["entities"]
            assert [f["predicate"] for f in entity["facts"]] == ["observed"]
            old = await call(
                client, "facts", namespace="app", entity="Telescope T1", as_of="2019-01-01"
            )
            assert old["entities"][0]["facts"] == []
            hits = (await call(client, "search", namespace="app", query="galaxy G2", k=1))["hits"]
            assert len(hits) == 1 and "galaxy G2" in hits[0]["text"]
            asked = await call(
                client, "ask", namespace="app", question="What did Telescope T2 observe?"
            )
            assert asked["kind"] == "answer" and asked["answer"]["text"] == "galaxy G2"
            task = "Which galaxy did T1 observe?"
            adapted = await call(
                client,
                "record_outcome",
                namespace="app",
                name="solver",
                task=task,
                answer="galaxy G1",
                feedback={"ground_truth": "galaxy G1"},
            )
            assert adapted["version"] >= 1
            assert await call(client, "list_playbooks", namespace="app") == {"names": ["solver"]}
            history = await call(client, "playbook_history", namespace="app", name="solver")
            assert len(history["result"]) == adapted["version"]
            huge = {"namespace": "app", "name": "solver", "since": 2**63}
            overflow = await client.call_tool("playbook_history", huge)
            assert overflow.is_error and "less than or equal to" in str(overflow.content)
            context = await call(
                client, "playbook_context", namespace="app", name="solver", task=task
            )
            assert context["bullet_ids"]
            bad = await client.call_tool("facts", {"namespace": "../etc", "entity": "x"})
            assert bad.is_error
            long = {"namespace": "app", "entity": "Telescope T1", "predicate": "p" * 201}
            assert "at most 200 characters" in str((await client.call_tool("facts", long)).content)
            job = {"namespace": "app", "job_id": "0" * 65}
            assert "at most 64 characters" in str(
                (await client.call_tool("job_status", job)).content
            )
            long_feedback = {"environment": "x" * 20_001}
            outcome = {"namespace": "app", "name": "solver", "task": task, "answer": "a"}
            too_long = await client.call_tool(
                "record_outcome", outcome | {"feedback": long_feedback}
            )
            assert too_long.is_error and "at most 20000 characters" in str(too_long.content)
            missing = await client.call_tool("facts", {"namespace": "app", "entity": "Nobody"})
            assert missing.is_error and "no entity named 'Nobody'" in str(missing.content)
    finally:
        await svc.jobs.close(1)
        await svc.aclose()


def test_every_tool_through_the_in_process_client(tmp_path: Path) -> None:
    asyncio.run(in_process(services(tmp_path)))


async def over_http(url: str, key: str, other: str) -> None:
    auth = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=auth)) as client:
        job = await ingest(client, "alice")
        assert job["state"] == "done"
        hits = await call(client, "search", namespace="alice", query="galaxy G1")
        assert hits["hits"]
        denied = await client.call_tool("search", {"namespace": "bob", "query": "galaxy"})
        assert denied.is_error and "not for namespace 'bob'" in str(denied.content)
    wrong = httpx2.AsyncClient(headers={"Authorization": f"Bearer {other}"}, timeout=60)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=wrong)) as client:
        stolen = await client.call_tool("search", {"namespace": "alice", "query": "galaxy"})
        assert stolen.is_error
        written = await client.call_tool(
            "add_documents", {"namespace": "alice", "documents": [doc(3)]}
        )
        assert written.is_error


def test_tools_over_streamable_http_with_keys(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / KEY_FILE)
    _, alice = ring.add("alice")
    _, bob = ring.add("bob")
    with running(tmp_path) as (url, svc):
        asyncio.run(over_http(url, alice, bob))
        assert svc.tenants.get("alice").store.stats().sources == 2
        assert svc.tenants.get("bob").store.stats().sources == 0


async def guess_then_use(url: str, key: str) -> tuple[str, str]:
    """Key guesses over MCP from 127.0.0.2, then a valid key over MCP from 127.0.0.1."""
    guesser = httpx2.Client(
        headers=RPC | {"Authorization": "Bearer eg_000000000000_guess"},
        transport=httpx2.HTTPTransport(local_address="127.0.0.2"),
        timeout=60,
    )
    with guesser:
        for _ in range(3):
            guessed = guesser.post(f"{url}/mcp", json=INITIALIZE)
    owner = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=owner)) as client:
        used = await client.call_tool("list_playbooks", {"namespace": "app"})
    assert guessed.status_code == 429
    return guessed.json()["error"], str(used.content)


def test_a_client_guessing_keys_over_mcp_does_not_lock_out_the_others(tmp_path: Path) -> None:
    """Rate limits over MCP went by one shared bucket, "mcp": one guesser stopped everyone."""
    _, key = KeyRing(tmp_path / KEY_FILE).add("app")
    with running(tmp_path, rate=0.01, burst=2) as (url, _):
        guessed, used = asyncio.run(guess_then_use(url, key))
    assert "too many requests with invalid keys" in guessed
    assert '"names": []' in used, used


async def listed_tools(url: str, key: str | None) -> set[str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        return {t.name for t in (await client.list_tools()).tools}


def test_mcp_needs_a_key_for_every_request_when_the_api_does(tmp_path: Path) -> None:
    """Only tool calls checked the key: without one, /mcp still answered `initialize` and
    `tools/list` on a server that requires keys. Now every request there gets the namespaced
    routes' 401; a server without keys still answers anyone (on loopback)."""
    _, key = KeyRing(tmp_path / KEY_FILE).add("app")
    with running(tmp_path) as (url, _):
        namespaced = httpx2.get(f"{url}/v1/namespaces/app/playbooks")
        anonymous = [
            httpx2.post(f"{url}/mcp", json=m, headers=RPC) for m in (INITIALIZE, LIST_TOOLS)
        ]
        forged = {"Authorization": "Bearer eg_000000000000_forged"}
        bad_key = httpx2.post(f"{url}/mcp", json=INITIALIZE, headers=RPC | forged)
        keyed = asyncio.run(listed_tools(url, key))
        health = [httpx2.get(url + path).status_code for path in ("/healthz", "/readyz")]
    assert namespaced.status_code == 401
    for response in anonymous:
        assert response.status_code == 401, response.text
        assert response.json() == namespaced.json()
        assert response.headers["www-authenticate"] == "Bearer"
    assert bad_key.status_code == 401 and "not valid" in bad_key.json()["error"]
    assert keyed == TOOLS
    assert health == [200, 200]
    with running(tmp_path / "open") as (url, _):
        assert asyncio.run(listed_tools(url, None)) == TOOLS
