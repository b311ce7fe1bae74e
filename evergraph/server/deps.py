"""FastAPI dependencies: the services, and the caller's namespace after authorization.

The namespace is the path segment `/v1/namespaces/{namespace}/...`; the key, if the server
requires keys, is `Authorization: Bearer <key>` and must have been made for that namespace.
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


def tenant(
    request: Request,
    namespace: Annotated[str, Path(pattern=NAMESPACE_PATTERN, description="The namespace.")],
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    token = credentials.credentials if credentials else None
    return svc.authorize(namespace, token, client_of(request))


ServicesDep = Annotated[Services, Depends(services)]
TenantDep = Annotated[Tenant, Depends(tenant)]
