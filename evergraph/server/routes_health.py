"""Liveness and readiness (open: load balancers probe them without keys) and Prometheus
metrics (behind the key check: they reveal the traffic)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from evergraph.server.deps import ServicesDep, admitted

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Still loading, or shutting down."}})
def readyz(svc: ServicesDep, response: Response) -> dict[str, str]:
    """Ready for requests: the embedder is loaded and jobs are accepted."""
    if not svc.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "loading"}
    if svc.jobs.closing:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "shutting down"}
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, dependencies=[Depends(admitted)])
def metrics(svc: ServicesDep) -> Response:
    """Prometheus text format."""
    return Response(svc.metrics.render(), media_type=svc.metrics.content_type)
