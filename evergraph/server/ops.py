"""The operations both surfaces serve (HTTP routes and MCP tools call these, nothing else)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from evergraph.agents.evidence_loop import Answer, ask
from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph.models import Fact
from evergraph.llm.base import Usage
from evergraph.memory import Adaptation, PlaybookMemory
from evergraph.playbooks.history import HistoryEntry
from evergraph.playbooks.render import RenderedPlaybook
from evergraph.retrieval.hybrid import ALL_MODES
from evergraph.server.errors import NotFound
from evergraph.server.schemas import (
    AskRequest,
    AskResponse,
    EntityFacts,
    FactsResponse,
    IngestRequest,
    Job,
    OutcomeRequest,
    PlaybookList,
    SearchRequest,
    SearchResponse,
)
from evergraph.server.services import Services
from evergraph.server.tenancy import Tenant


def submit(services: Services, tenant: Tenant, request: IngestRequest) -> Job:
    return services.jobs.submit(tenant.name, request.documents, request.samples)


def job_status(services: Services, tenant: Tenant, job_id: str) -> Job:
    job = services.jobs.get(tenant.name, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r} in namespace {tenant.name!r}")
    return job


def facts(
    tenant: Tenant,
    entity: str,
    *,
    predicate: str | None = None,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
    history: bool = False,
) -> FactsResponse:
    store = tenant.store
    found = store.find_entities(entity)
    if not found:
        raise NotFound(
            f"no entity named {entity!r} in namespace {tenant.name!r}",
            fix="names and aliases match ignoring case",
        )
    out = []
    for e in found:
        held = store.facts_about(
            e.id,
            predicate=predicate,
            as_of=None if history else as_of,
            recorded_at=None if history else recorded_at,
            history=history,
        )
        out.append(
            EntityFacts(
                entity=e.model_copy(update={"embedding": None}),
                facts=held,
                names=_names(tenant, held),
            )
        )
    return FactsResponse(entities=out)


def _names(tenant: Tenant, facts: Sequence[Fact]) -> dict[str, str]:
    ids = sorted({i for f in facts for i in (f.subject_id, f.object_id) if i})
    return {e.id: e.name for e in tenant.store.get_entities(ids)}


def search(embedder: Embedder, tenant: Tenant, request: SearchRequest) -> SearchResponse:
    """`embedder` must be the one that embedded the namespace's chunks; a blank query is
    refused (its vector is noise: it would rank arbitrary passages first)."""
    if not request.query.strip():
        raise UsageError("the query is empty", fix="search for some words")
    retriever = tenant.retriever(embedder)
    hits = retriever.search(
        request.query, k=request.k, modes=set(request.modes or ALL_MODES), as_of=request.as_of
    )
    return SearchResponse(hits=hits)


async def ask_question(services: Services, tenant: Tenant, request: AskRequest) -> AskResponse:
    question = " ".join(request.question.split())
    if not question:
        raise UsageError("the question is empty", fix="ask something")
    loop = services.loop
    if request.max_rounds is not None:
        loop = loop.model_copy(update={"max_rounds": request.max_rounds})
    result = await ask(
        question,
        store=tenant.store,
        embedder=services.embedder,
        llm=services.llm,
        settings=loop,
        as_of=request.as_of,
    )
    services.metrics.llm("ask", result.usage)
    if isinstance(result, Answer):
        return AskResponse(kind="answer", answer=result)
    return AskResponse(kind="refusal", refusal=result)


def _memory(services: Services, tenant: Tenant, name: str) -> PlaybookMemory:
    """One memory per stored playbook, kept (its agent graph is compiled once); for a name
    not stored yet it is not kept: names are caller input, and a memory holds a graph."""
    memory = tenant.playbooks.get(name)
    if memory is None:
        memory = PlaybookMemory(tenant.store, services.llm, services.embedder, name=name)
        if tenant.store.get_playbook(name) is not None:
            tenant.playbooks[name] = memory
    return memory


def list_playbooks(tenant: Tenant) -> PlaybookList:
    return PlaybookList(names=tenant.store.list_playbooks())


def playbook_context(
    services: Services, tenant: Tenant, name: str, task: str, budget: int | None = None
) -> RenderedPlaybook:
    """The playbook's bullets most relevant to `task`, within `budget` tokens (no LLM call;
    a playbook never written renders empty, without compiling a memory for the name)."""
    if name not in tenant.playbooks and tenant.store.get_playbook(name) is None:
        return RenderedPlaybook(text="", bullet_ids=[], omitted=0, tokens=0)
    return _memory(services, tenant, name).get_context(task, budget=budget)


async def record_outcome(
    services: Services, tenant: Tenant, name: str, request: OutcomeRequest
) -> Adaptation:
    adaptation = await _memory(services, tenant, name).record_outcome(
        request.task, request.answer, request.feedback
    )
    spent = Usage(
        prompt_tokens=adaptation.prompt_tokens,
        completion_tokens=adaptation.completion_tokens,
        requests=adaptation.llm_calls,
    )
    services.metrics.llm("playbook", spent)
    return adaptation


def playbook_history(tenant: Tenant, name: str, since: int = 0) -> list[HistoryEntry]:
    if tenant.store.get_playbook(name) is None:
        raise NotFound(f"no playbook {name!r} in namespace {tenant.name!r}")
    return tenant.store.playbook_history(name, since=since)
