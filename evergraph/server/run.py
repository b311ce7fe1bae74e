"""Running the server for real: clients from settings, JSON logs, uvicorn or stdio.

Shutdown (SIGTERM or Ctrl-C): uvicorn stops accepting connections and finishes the requests in
flight, then the lifespan gives a running ingestion job `grace_s` to finish before cancelling
it (it resumes from its checkpoint at the next start; see `jobs`).
"""

from __future__ import annotations

import uvicorn

from evergraph.config import Settings
from evergraph.graph.schema import GraphSchema
from evergraph.server.app import create_app
from evergraph.server.logs import configure_logging
from evergraph.server.mcp import build_mcp
from evergraph.server.services import ServerOptions, Services


def build_services(settings: Settings, options: ServerOptions, schema: GraphSchema) -> Services:
    from evergraph.runtime import build_embedder, build_llm

    return Services(
        settings=settings,
        llm=build_llm(settings),
        embedder_factory=lambda: build_embedder(settings),
        options=options,
        schema=schema,
    )


def serve_http(services: Services) -> None:
    """The HTTP API with MCP at /mcp, until a signal stops it."""
    services.check_exposure()
    services.jobs.claim()  # here, not in the lifespan: uvicorn would log a traceback instead
    app = create_app(services)
    configure_logging()  # after the MCP SDK configured its own
    options = services.options
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        log_config=None,
        access_log=False,  # `RequestMetrics` writes one structured line per request
        timeout_graceful_shutdown=int(options.grace_s) + 5,
    )


async def serve_stdio(services: Services) -> None:
    """MCP over stdin/stdout for a client that starts this process (logs go to stderr)."""
    services.jobs.claim()  # before the embedder's seconds of loading
    server = build_mcp(services)
    configure_logging()
    await services.load()
    await services.jobs.start()
    try:
        await server.run_stdio_async()
    finally:
        await services.jobs.close(services.options.grace_s)
        await services.aclose()
