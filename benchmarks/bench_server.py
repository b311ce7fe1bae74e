"""Throughput and latency of the HTTP API (search and facts) under concurrent clients, with
the same queries called in-process as the baseline, measured in the same run.

    .venv/bin/python benchmarks/bench_server.py [--clients 8] [--duration 30] [--embedder minilm]

The server runs in a subprocess (uvicorn on 127.0.0.1, a free port) so that its resident
memory is its own; every request carries an API key (hashed at rest, verified once). The
store holds the 1,000 HotpotQA paragraphs of its 100 dev questions (shared data) as passages,
and a synthetic graph of `--entities` entities and 4x as many facts. Search queries are the
HotpotQA questions; facts queries name random entities. Prints requests/s and p50/p99 per
operation for HTTP and in-process (the same `ops` calls on the same store, the same number of
threads), the ratios, and the server's RSS; never asserts (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from evergraph.config import Settings
from evergraph.embed.base import Embedder
from evergraph.evals.multihop_data import corpus, read_items
from evergraph.graph.models import Entity, Fact, content_id
from evergraph.retrieval.index import index_passages
from evergraph.server.keys import KEY_FILE, KeyRing
from evergraph.server.schemas import SearchRequest
from evergraph.server.tenancy import Tenants

HOTPOT = (
    Path(__file__).resolve().parents[2] / "shared/data/hotpotqa/hotpotqa_dev_distractor_100.jsonl"
)
NS = "bench"


def embedder(name: str) -> Embedder:
    if name == "hashing":
        from evergraph.embed.testing import HashingEmbedder

        return HashingEmbedder(dim=384)
    from evergraph.runtime import build_embedder

    return build_embedder(Settings(home=Path(tempfile.gettempdir()) / "bench-server-cache"))


def build(home: Path, emb: Embedder, entities: int) -> tuple[list[str], list[str]]:
    """The namespace's store; returns (search queries, entity names)."""
    items = read_items(HOTPOT)
    store = Tenants(home / "namespaces").get(NS).store
    index_passages(store, emb, corpus(items))
    names = [f"Entity {i}" for i in range(entities)]
    rows = [Entity(id=content_id("e", n), name=n, type="Thing") for n in names]
    rng = random.Random(7)
    facts = [
        Fact(
            id=content_id("f", str(i)),
            subject_id=rng.choice(rows).id,
            predicate=rng.choice(["cites", "observed", "part_of", "located_in"]),
            object_id=rng.choice(rows).id,
            confidence=0.8,
            valid_from=datetime(2000 + i % 20, 1, 1, tzinfo=UTC),
        )
        for i in range(4 * entities)
    ]
    with store.transaction():
        store.upsert_entities(rows)
        store.upsert_facts(facts)
    store.close()
    return [i.question for i in items], names


def serve(home: Path, port: int, embedder_name: str) -> None:
    """The server process (no LLM is called by search or facts)."""
    import uvicorn

    from evergraph.llm.testing import ScriptedLLM
    from evergraph.server.app import create_app
    from evergraph.server.logs import configure_logging
    from evergraph.server.services import ServerOptions, Services

    services = Services(
        settings=Settings(home=home),
        llm=ScriptedLLM([]),
        embedder_factory=lambda: embedder(embedder_name),
        options=ServerOptions(port=port, rate=1e9, burst=10**9),
    )
    app = create_app(services)
    configure_logging()  # as `evergraph serve` does: one JSON line per request, on stderr
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def run_load(call: Callable[[random.Random], None], clients: int, duration: float) -> list[float]:
    """`clients` threads calling for `duration` seconds; every call's latency in seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + duration

    def worker(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            started = time.perf_counter()
            call(rng)
            latencies[i].append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for per in latencies for x in per]


def report(label: str, latencies: list[float], duration: float) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    rps = len(latencies) / duration
    print(f"{label:22} {rps:8.1f} req/s   p50 {q[49] * 1000:7.2f} ms   p99 {q[98] * 1000:7.2f} ms")
    return rps, q[49]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    parser.add_argument("--serve", nargs=2, metavar=("HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.embedder)
        return

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        emb = embedder(args.embedder)
        queries, names = build(home, emb, args.entities)
        _, token = KeyRing(home / KEY_FILE).add(NS)
        port = free_port()
        log = (home / "server.log").open("w")
        server = subprocess.Popen(
            [sys.executable, __file__, "--embedder", args.embedder, "--serve", tmp, str(port)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            process = psutil.Process(server.pid)
            idle_rss = process.memory_info().rss
            local = threading.local()

            def http() -> httpx.Client:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(
                        base_url=f"{url}/v1/namespaces/{NS}",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    )
                client: httpx.Client = local.client
                return client

            def http_search(rng: random.Random) -> None:
                r = http().post("/search", json={"query": rng.choice(queries), "k": 10})
                r.raise_for_status()

            def http_facts(rng: random.Random) -> None:
                r = http().get("/facts", params={"entity": rng.choice(names)})
                r.raise_for_status()

            from evergraph.server import ops

            tenants = Tenants(home / "namespaces")
            tenant = tenants.get(NS)

            def local_search(rng: random.Random) -> None:
                request = SearchRequest(query=rng.choice(queries), k=10)
                ops.search(emb, tenant, request)

            def local_facts(rng: random.Random) -> None:
                ops.facts(tenant, rng.choice(names))

            print(
                f"{len(queries)} questions over {tenant.store.stats().chunks} passages; "
                f"{args.entities} entities, {4 * args.entities} facts; {args.clients} clients, "
                f"{args.duration:.0f} s per phase, embedder {args.embedder}"
            )
            peak = idle_rss
            results = {}
            for op, over_http, in_process in (
                ("search", http_search, local_search),
                ("facts", http_facts, local_facts),
            ):
                sampler = RssSampler(process)
                with sampler:
                    served = run_load(over_http, args.clients, args.duration)
                peak = max(peak, sampler.peak)
                baseline = run_load(in_process, args.clients, args.duration)
                h = report(f"{op} over HTTP", served, args.duration)
                b = report(f"{op} in-process", baseline, args.duration)
                results[op] = (h, b)
            for op, ((h_rps, h_p50), (b_rps, b_p50)) in results.items():
                print(
                    f"{op}: HTTP/in-process throughput {h_rps / b_rps:.2f}x, "
                    f"p50 {h_p50 / b_p50:.2f}x"
                )
            mib = 1024 * 1024
            print(f"server RSS: {idle_rss / mib:.0f} MiB idle, {peak / mib:.0f} MiB peak")
            tenants.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()


def free_port() -> int:
    """A free loopback port (released before the server binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


class RssSampler:
    """The peak RSS of a process, sampled every 0.2 s while in the block."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


if __name__ == "__main__":
    main()
