"""Playbooks (ACE): context for a task, recording an outcome, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from evergraph.memory import Adaptation
from evergraph.playbooks.history import HistoryEntry
from evergraph.playbooks.render import RenderedPlaybook
from evergraph.server import ops
from evergraph.server.deps import ServicesDep, TenantDep
from evergraph.server.schemas import (
    MAX_QUERY,
    MAX_VERSION,
    PLAYBOOK_PATTERN,
    OutcomeRequest,
    PlaybookList,
)

router = APIRouter(prefix="/v1/namespaces/{namespace}/playbooks", tags=["playbooks"])
Name = Annotated[str, Path(pattern=PLAYBOOK_PATTERN, description="The playbook's name.")]


@router.get("")
def list_playbooks(tenant: TenantDep) -> PlaybookList:
    return ops.list_playbooks(tenant)


@router.get("/{name}/context")
def context(
    name: Name,
    svc: ServicesDep,
    tenant: TenantDep,
    task: Annotated[str, Query(min_length=1, max_length=MAX_QUERY)],
    budget: Annotated[int | None, Query(ge=0, le=100_000, description="Tokens.")] = None,
) -> RenderedPlaybook:
    """The bullets most relevant to the task, within the token budget (no model call)."""
    return ops.playbook_context(svc, tenant, name, task, budget)


@router.post("/{name}/outcomes")
async def record_outcome(
    name: Name, body: OutcomeRequest, svc: ServicesDep, tenant: TenantDep
) -> Adaptation:
    """Learn from an answer: reflect, curate, apply the delta ops, save a new version."""
    return await ops.record_outcome(svc, tenant, name, body)


@router.get("/{name}/history")
def history(
    name: Name,
    tenant: TenantDep,
    since: Annotated[
        int, Query(ge=0, le=MAX_VERSION, description="Entries after this version.")
    ] = 0,
) -> list[HistoryEntry]:
    """The append-only history of the playbook's changes, oldest first."""
    return ops.playbook_history(tenant, name, since)
