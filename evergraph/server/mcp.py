"""The MCP server (official `mcp` SDK, v2: `MCPServer`): the HTTP API's operations as tools.

Every tool names its namespace. Over streamable HTTP (mounted at /mcp by `app.create_app`) the
caller's key comes in the Authorization header and the HTTP API's policy applies unchanged
(`deps.Keyed` checks it on every request there; each tool checks its namespace).
Over stdio (or the SDK's in-process client) the caller is the local user who started the
process, as with the CLI: there is no header, and no key is asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from starlette.requests import Request

from evergraph.agents.ace_types import Feedback
from evergraph.errors import EvergraphError
from evergraph.memory import Adaptation
from evergraph.playbooks.history import HistoryEntry
from evergraph.playbooks.render import RenderedPlaybook
from evergraph.server import ops
from evergraph.server.deps import client_of
from evergraph.server.schemas import (
    MAX_JOB_ID,
    MAX_PREDICATE,
    MAX_QUERY,
    MAX_TASK,
    MAX_VERSION,
    PLAYBOOK_PATTERN,
    AskRequest,
    AskResponse,
    DocumentIn,
    FactsResponse,
    FeedbackIn,
    IngestRequest,
    Job,
    OutcomeRequest,
    PlaybookList,
    SearchRequest,
    SearchResponse,
)
from evergraph.server.services import Services
from evergraph.server.tenancy import NAMESPACE_PATTERN, Tenant

T = TypeVar("T")

Namespace = Annotated[str, Field(pattern=NAMESPACE_PATTERN, description="The namespace.")]
PlaybookName = Annotated[str, Field(pattern=PLAYBOOK_PATTERN, description="The playbook.")]
INSTRUCTIONS = (
    "Evergraph is a memory for agents: add documents to a namespace's temporal knowledge "
    "graph, read facts about an entity as of a date, search passages, ask multi-hop "
    "questions answered with citations (or refused with the reason), and keep playbooks of "
    "strategies that improve with each recorded outcome."
)


def _tenant(services: Services, namespace: str, ctx: Context) -> Tenant:
    headers = ctx.headers
    if headers is None:  # stdio or in-process: the local user
        return services.tenants.get(namespace)
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    request = ctx.request_context.request
    client = client_of(request) if isinstance(request, Request) else "unknown"
    return services.authorize(namespace, bearer or None, client)


async def _guarded(call: Callable[[], Awaitable[T]]) -> T:
    """The caller sees an Evergraph error's message and fix; anything else stays a crash
    (the SDK then sends a generic message and logs the traceback)."""
    try:
        return await call()
    except EvergraphError as e:
        raise ToolError(str(e)) from e


def build_mcp(services: Services) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("evergraph", instructions=INSTRUCTIONS)

    @server.tool()
    async def add_documents(
        namespace: Namespace,
        documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=500)],
        ctx: Context,
        samples: Annotated[int | None, Field(ge=1, le=16)] = None,
    ) -> Job:
        """Queue documents for extraction into the graph; returns a job to poll."""
        request = IngestRequest(documents=documents, samples=samples)

        async def go() -> Job:
            return ops.submit(services, _tenant(services, namespace, ctx), request)

        return await _guarded(go)

    @server.tool()
    async def job_status(
        namespace: Namespace,
        job_id: Annotated[str, Field(max_length=MAX_JOB_ID)],
        ctx: Context,
    ) -> Job:
        """The status of an ingestion job."""

        async def go() -> Job:
            return ops.job_status(services, _tenant(services, namespace, ctx), job_id)

        return await _guarded(go)

    @server.tool()
    async def facts(
        namespace: Namespace,
        entity: Annotated[str, Field(min_length=1, max_length=500)],
        ctx: Context,
        predicate: Annotated[str | None, Field(max_length=MAX_PREDICATE)] = None,
        as_of: datetime | None = None,
        recorded_at: datetime | None = None,
        history: bool = False,
    ) -> FactsResponse:
        """Facts about an entity (by name or alias) that hold at `as_of` (world time) as the
        store knew them at `recorded_at`; `history` lists every fact whatever its time."""

        async def go() -> FactsResponse:
            tenant = _tenant(services, namespace, ctx)
            return await asyncio.to_thread(
                ops.facts,
                tenant,
                entity,
                predicate=predicate,
                as_of=as_of,
                recorded_at=recorded_at,
                history=history,
            )

        return await _guarded(go)

    @server.tool()
    async def search(
        namespace: Namespace,
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)],
        ctx: Context,
        k: Annotated[int, Field(ge=1, le=100)] = 10,
        as_of: datetime | None = None,
    ) -> SearchResponse:
        """Hybrid search over the namespace's passages (BM25, vectors, titles, graph)."""
        request = SearchRequest(query=query, k=k, as_of=as_of)

        async def go() -> SearchResponse:
            tenant = _tenant(services, namespace, ctx)
            return await asyncio.to_thread(ops.search, services.embedder, tenant, request)

        return await _guarded(go)

    @server.tool()
    async def ask(
        namespace: Namespace,
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)],
        ctx: Context,
        as_of: datetime | None = None,
        max_rounds: Annotated[int | None, Field(ge=1, le=8)] = None,
    ) -> AskResponse:
        """Answer a question with citations into the evidence ledger, or refuse with the
        hops that lack evidence."""
        request = AskRequest(question=question, as_of=as_of, max_rounds=max_rounds)

        async def go() -> AskResponse:
            return await ops.ask_question(services, _tenant(services, namespace, ctx), request)

        return await _guarded(go)

    @server.tool()
    async def list_playbooks(namespace: Namespace, ctx: Context) -> PlaybookList:
        """The names of the namespace's playbooks."""

        async def go() -> PlaybookList:
            return ops.list_playbooks(_tenant(services, namespace, ctx))

        return await _guarded(go)

    @server.tool()
    async def playbook_context(
        namespace: Namespace,
        name: PlaybookName,
        task: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)],
        ctx: Context,
        budget: Annotated[int | None, Field(ge=0, le=100_000)] = None,
    ) -> RenderedPlaybook:
        """The playbook's strategies most relevant to a task, within a token budget, to put
        in the prompt (no model call)."""

        async def go() -> RenderedPlaybook:
            tenant = _tenant(services, namespace, ctx)
            return await asyncio.to_thread(
                ops.playbook_context, services, tenant, name, task, budget
            )

        return await _guarded(go)

    @server.tool()
    async def record_outcome(
        namespace: Namespace,
        name: PlaybookName,
        task: Annotated[str, Field(min_length=1, max_length=MAX_TASK)],
        answer: Annotated[str, Field(max_length=MAX_TASK)],
        ctx: Context,
        feedback: FeedbackIn | None = None,
    ) -> Adaptation:
        """Learn from an answer to a task (ground truth, environment feedback or success):
        the playbook is updated by small delta operations and a new version saved."""
        request = OutcomeRequest(task=task, answer=answer, feedback=feedback or Feedback())

        async def go() -> Adaptation:
            tenant = _tenant(services, namespace, ctx)
            return await ops.record_outcome(services, tenant, name, request)

        return await _guarded(go)

    @server.tool()
    async def playbook_history(
        namespace: Namespace,
        name: PlaybookName,
        ctx: Context,
        since: Annotated[int, Field(ge=0, le=MAX_VERSION)] = 0,
    ) -> list[HistoryEntry]:
        """The playbook's changes after version `since`, oldest first."""

        async def go() -> list[HistoryEntry]:
            tenant = _tenant(services, namespace, ctx)
            return await asyncio.to_thread(ops.playbook_history, tenant, name, since)

        return await _guarded(go)

    return server
