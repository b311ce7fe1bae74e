"""FastAPI dependencies: the services, and the caller's namespace after authorization.

The namespace is the path segment `/v1/namespaces/{namespace}/...`; the key, if the server
requires keys, is `Authorization: Bearer <key>` and must have been made for that namespace.
Metrics, the API's schema and docs, and every request to MCP at /mcp take any namespace's key;
liveness and readiness none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

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


class Keyed:
    """An ASGI app that FastAPI's dependencies do not reach (MCP at /mcp) behind the key check,
    so that even its listing requests need a key whenever namespaced routes do. The error
    reaches the app's handlers: the same 401 (or 429 for guessing). Only the key is checked:
    each tool call is throttled per key by `Services.authorize` already."""

    def __init__(self, app: ASGIApp, svc: Services) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        self.svc.authenticate(token(await _bearer(request)), client_of(request))
        await self.app(scope, receive, send)


ServicesDep = Annotated[Services, Depends(services)]
TenantDep = Annotated[Tenant, Depends(tenant)]
