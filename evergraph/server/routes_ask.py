"""Ask: the EvidenceLoop's answer with citations, or its refusal."""

from __future__ import annotations

from fastapi import APIRouter

from evergraph.server import ops
from evergraph.server.deps import ServicesDep, TenantDep
from evergraph.server.schemas import AskRequest, AskResponse

router = APIRouter(prefix="/v1/namespaces/{namespace}", tags=["ask"])


@router.post("/ask")
async def ask(body: AskRequest, svc: ServicesDep, tenant: TenantDep) -> AskResponse:
    """Answer a (multi-hop) question from the namespace's documents with citations into the
    evidence ledger, or refuse and name the hops that lack evidence."""
    return await ops.ask_question(svc, tenant, body)
