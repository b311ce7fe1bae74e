"""The app factory: FastAPI routes, MCP over streamable HTTP at /mcp, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route

import evergraph
from evergraph.server import (
    errors,
    routes_ask,
    routes_docs,
    routes_graph,
    routes_health,
    routes_playbooks,
)
from evergraph.server.deps import Keyed
from evergraph.server.hosts import LoopbackHosts
from evergraph.server.limits import BodyLimit
from evergraph.server.mcp import build_mcp
from evergraph.server.metrics import RequestMetrics
from evergraph.server.schemas import ErrorBody
from evergraph.server.services import Services, is_loopback

MCP_PATH = "/mcp"
_ERRORS = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "Bad input: the message says what and how to fix it."),
        (401, "A key is required, or the key is not valid."),
        (403, "The key is for another namespace, or (on loopback) the Origin is not local."),
        (404, "Not found in this namespace."),
        (409, "Another writer kept updating the playbook: retry."),
        (413, "The body is too large."),
        (421, "On loopback, the Host is not local (DNS-rebinding protection)."),
        (422, "The body or the parameters do not fit the schema."),
        (429, "Rate limited, or the ingestion queue is full: see Retry-After."),
        (503, "A service (model, store) is unavailable, or the server is shutting down."),
    ]
}


def create_app(services: Services) -> FastAPI:
    """The whole server for one set of services; `services.options` sets the limits."""
    mcp = build_mcp(services)
    mcp_http = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=services.options.host,
        max_request_body_size=services.options.max_body,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.load()
        await services.jobs.start()
        async with mcp.session_manager.run():
            try:
                yield
            finally:
                await services.jobs.close(services.options.grace_s)
                await services.aclose()

    app = FastAPI(
        title="Evergraph",
        version=evergraph.__version__,
        description=(
            "Memory for LLM agents: a temporal knowledge graph, hybrid search and evidence-"
            "based answers, per namespace. Every call but /healthz and /readyz needs "
            "`Authorization: Bearer <key>` once the server has keys (`evergraph serve keys "
            "add NAMESPACE`): a key for the namespace it names, any key for /metrics and the "
            f"docs. The same operations are MCP tools at {MCP_PATH}."
        ),
        lifespan=lifespan,
        openapi_url=None,  # served by `routes_docs`, behind the key check
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    app.state.services = services
    errors.install(app)
    for module in (routes_graph, routes_ask, routes_playbooks, routes_health, routes_docs):
        app.include_router(module.router)
    (route,) = mcp_http.routes  # the SDK's one route, at MCP_PATH
    assert isinstance(route, Route)
    app.router.routes.append(Route(MCP_PATH, Keyed(route.endpoint, services), name=route.name))
    app.add_middleware(BodyLimit, limit=services.options.max_body)
    if is_loopback(services.options.host):
        app.add_middleware(LoopbackHosts)
    app.add_middleware(RequestMetrics, metrics=services.metrics)
    return app
