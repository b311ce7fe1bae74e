"""Documents (asynchronous ingestion), jobs, facts and hybrid search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from evergraph.server import ops
from evergraph.server.deps import ServicesDep, TenantDep
from evergraph.server.schemas import (
    MAX_JOB_ID,
    MAX_PREDICATE,
    FactsResponse,
    IngestRequest,
    Job,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/v1/namespaces/{namespace}", tags=["graph"])


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED)
def add_documents(body: IngestRequest, svc: ServicesDep, tenant: TenantDep) -> Job:
    """Queue documents for extraction into the namespace's graph; poll the job for status."""
    return ops.submit(svc, tenant, body)


@router.get("/jobs/{job_id}")
def get_job(
    job_id: Annotated[str, Path(max_length=MAX_JOB_ID)], svc: ServicesDep, tenant: TenantDep
) -> Job:
    return ops.job_status(svc, tenant, job_id)


@router.get("/facts")
def get_facts(
    tenant: TenantDep,
    entity: Annotated[str, Query(min_length=1, max_length=500, description="Name or alias.")],
    predicate: Annotated[str | None, Query(max_length=MAX_PREDICATE)] = None,
    as_of: Annotated[datetime | None, Query(description="World time.")] = None,
    recorded_at: Annotated[datetime | None, Query(description="What the store knew then.")] = None,
    history: Annotated[bool, Query(description="Every fact, whatever its time.")] = False,
) -> FactsResponse:
    """Facts about an entity that hold at `as_of` as recorded at `recorded_at`."""
    return ops.facts(
        tenant,
        entity,
        predicate=predicate,
        as_of=as_of,
        recorded_at=recorded_at,
        history=history,
    )


@router.post("/search")
def search(body: SearchRequest, svc: ServicesDep, tenant: TenantDep) -> SearchResponse:
    """Hybrid search (BM25, vectors, title links, graph walk) fused by reciprocal rank."""
    return ops.search(svc.embedder, tenant, body)
