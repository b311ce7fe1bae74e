"""What the server holds for its lifetime: settings, clients, namespaces, keys, jobs, metrics,
and the access policy. Built once by `serve` (or by a test, with test doubles injected)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evergraph.agents.build import Builder, Totals, constructor
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.evidence_types import LoopSettings
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.config import Settings
from evergraph.embed.base import Embedder
from evergraph.errors import ServiceError, UsageError
from evergraph.graph.schema import GraphSchema
from evergraph.llm.base import LLM, Usage
from evergraph.server.errors import Forbidden, RateLimited, Unauthorized
from evergraph.server.jobs import JobQueue
from evergraph.server.keys import KEY_FILE, ApiKey, KeyRing
from evergraph.server.limits import RateLimiter
from evergraph.server.metrics import Metrics
from evergraph.server.schemas import DocumentIn, Job
from evergraph.server.tenancy import Tenant, Tenants

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = 8 * 1024 * 1024  # bytes in one request
    rate: float = 20.0  # requests a second per key (per client address without keys)
    burst: int = 40
    grace_s: float = 30.0  # for a running ingestion job at shutdown
    require_keys: bool = False  # also on loopback


@dataclass
class Services:
    settings: Settings
    llm: LLM
    embedder_factory: Callable[[], Embedder]
    options: ServerOptions = field(default_factory=ServerOptions)
    schema: GraphSchema = field(default_factory=GraphSchema)
    loop: LoopSettings = field(default_factory=LoopSettings)
    metrics: Metrics = field(default_factory=Metrics)
    _embedder: Embedder | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        home = self.settings.home
        self.tenants = Tenants(home / "namespaces")
        self.keys = KeyRing(home / KEY_FILE)
        self.limiter = RateLimiter(self.options.rate, self.options.burst)
        self.jobs = JobQueue(
            home / "jobs", self.ingest, self.metrics, self.settings.server.max_pending_jobs
        )

    def check_exposure(self) -> None:
        """Beyond loopback, every call must carry a key: refuse to start without any."""
        if not is_loopback(self.options.host) and not self.keys.required():
            raise UsageError(
                f"refusing to listen on {self.options.host} without API keys: anyone who can "
                "reach it could read and write every namespace",
                fix="create a key first: evergraph serve keys add NAMESPACE "
                "(or keep the default --host 127.0.0.1)",
            )

    async def load(self) -> None:
        """Load the embedder (seconds: torch) off the event loop."""
        if self._embedder is None:
            self._embedder = await asyncio.to_thread(self.embedder_factory)

    @property
    def ready(self) -> bool:
        return self._embedder is not None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise ServiceError("the server is still loading the embedder", fix="retry shortly")
        return self._embedder

    def keys_required(self) -> bool:
        """Beyond loopback keys stay required after the last one is revoked: that must not
        open the server."""
        exposed = not is_loopback(self.options.host)
        return self.options.require_keys or exposed or self.keys.required()

    def authenticate(self, token: str | None, client: str) -> ApiKey | None:
        """The caller's valid key, or None when the server requires none."""
        if not self.keys_required():
            return None
        if not token:
            raise Unauthorized(
                "this server requires an API key",
                fix="send Authorization: Bearer <key> (evergraph serve keys add NAMESPACE)",
            )
        # failed attempts are limited per client: each costs a scrypt hash
        failures = f"failed:{client}"
        wait = self.limiter.take(failures, consume=False)
        if wait:
            raise RateLimited("too many requests with invalid keys", retry_after=wait)
        key = self.keys.verify(token)
        if key is None:
            self.limiter.take(failures)
            raise Unauthorized("the API key is not valid (or was revoked)")
        return key

    def _throttle(self, key: ApiKey | None, client: str) -> None:
        """Rate-limit per key (per client address when the server requires no keys)."""
        wait = self.limiter.take(f"key:{key.id}" if key else f"client:{client}")
        if wait:
            raise RateLimited("too many requests", retry_after=wait)

    def admit(self, token: str | None, client: str) -> None:
        """For the routes outside namespaces that reveal traffic or the API (metrics, the
        schema and docs): any namespace's key opens them, under the same policy."""
        self._throttle(self.authenticate(token, client), client)

    def authorize(self, namespace: str, token: str | None, client: str) -> Tenant:
        """The namespace's tenant, if this caller may use it; rate-limited per key."""
        key = self.authenticate(token, client)
        if key is not None and key.namespace != namespace:
            raise Forbidden(
                f"this API key is not for namespace {namespace!r}",
                fix="use a key made for that namespace",
            )
        self._throttle(key, client)
        return self.tenants.get(namespace)

    async def ingest(
        self, job: Job, documents: Sequence[DocumentIn], done: Callable[[int], None]
    ) -> Totals:
        """Extract and integrate a job's documents (the builder checkpoints every window)."""
        tenant = self.tenants.get(job.namespace)
        options = ExtractOptions.from_settings(self.settings.extract, samples=job.samples)
        builder = Builder(
            tenant.store,
            Extractor(self.llm, self.schema, options),
            constructor(tenant.store, self.embedder, self.schema),
            concurrency=self.settings.llm.max_concurrency,
            progress=lambda p: done(p.done),
        )
        batch = [d.document(f"job {job.id}:{i}") for i, d in enumerate(documents)]
        try:
            async with open_checkpointer(tenant.checkpoints) as saver:
                summary = await builder.run(batch, saver)
        finally:
            tenant.changed()
        t = summary.totals
        spent = Usage(
            prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens,
            requests=t.requests,
        )
        self.metrics.llm("ingest", spent)
        return t

    async def aclose(self) -> None:
        close = getattr(self.llm, "aclose", None)
        if close is not None:
            await close()
        self.tenants.close()
