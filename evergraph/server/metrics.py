"""Prometheus metrics (one registry per app, so that tests can run several apps) and the
ASGI middleware that counts, times and logs every request."""

from __future__ import annotations

import logging
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evergraph.llm.base import Usage

log = logging.getLogger("evergraph.server.access")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "evergraph_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "evergraph_http_request_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "evergraph_llm_tokens",
            "LLM tokens spent, by operation and kind (prompt, completion).",
            ["operation", "kind"],
            registry=self.registry,
        )
        self.llm_requests = Counter(
            "evergraph_llm_requests", "LLM requests, by operation.", ["operation"],
            registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "evergraph_ingest_queue_depth",
            "Ingestion jobs queued or running.",
            registry=self.registry,
        )
        self.jobs = Counter(
            "evergraph_ingest_jobs", "Ingestion jobs finished, by outcome.", ["state"],
            registry=self.registry,
        )  # fmt: skip

    def llm(self, operation: str, usage: Usage) -> None:
        self.llm_tokens.labels(operation, "prompt").inc(usage.prompt_tokens)
        self.llm_tokens.labels(operation, "completion").inc(usage.completion_tokens)
        self.llm_requests.labels(operation).inc(usage.requests)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Counts and times each request by its route template (never the raw path: ids in paths
    would make unbounded label sets), and writes one structured access log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "namespace": scope.get("path_params", {}).get("namespace"),
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
