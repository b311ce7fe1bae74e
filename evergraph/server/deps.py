"""FastAPI dependencies: the services, and the caller's namespace after authorization.

The namespace is the path segment `/v1/namespaces/{namespace}/...`; the key, if the server
requires keys, is `Authorization: Bearer <key>` and must have been made for that namespace.
Metrics and the API's schema and docs take any namespace's key; liveness and readiness none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from evergraph.server.services import Services
from evergraph.server.tenancy import NAMESPACE_PATTERN, Tenant

_bearer = HTTPBearer(auto_error=False, description="An API key made for the namespace.")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_of(request: Request) -> str:
    """The caller's address, which rate limits go by (per client, over HTTP and MCP alike)."""
    return request.client.host if request.client else "unknown"


def token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return credentials.credentials if credentials else None


TokenDep = Annotated[str | None, Depends(token)]


def tenant(
    request: Request,
    namespace: Annotated[str, Path(pattern=NAMESPACE_PATTERN, description="The namespace.")],
    svc: Annotated[Services, Depends(services)],
    bearer: TokenDep,
) -> Tenant:
    return svc.authorize(namespace, bearer, client_of(request))


def admitted(
    request: Request, svc: Annotated[Services, Depends(services)], bearer: TokenDep
) -> None:
    """Guards the routes outside namespaces that need a key whenever namespaced ones do."""
    svc.admit(bearer, client_of(request))


ServicesDep = Annotated[Services, Depends(services)]
TenantDep = Annotated[Tenant, Depends(tenant)]
