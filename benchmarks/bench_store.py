"""Speed of the embedded SQLite store, with a raw-sqlite3 baseline measured in the same run.

    .venv/bin/python benchmarks/bench_store.py [--entities 20000] [--facts 100000]

Prints figures and ratios; never asserts (timings depend on the machine).
Targets: bulk upsert of 20k entities + 100k facts < 2 s; 2-hop neighbourhood p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from evergraph.graph.models import Chunk, Entity, Fact, Source
from evergraph.graph.store.sqlite import SQLiteGraphStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def make_graph(
    rng: random.Random, n_entities: int, n_facts: int
) -> tuple[list[Entity], list[Fact]]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    entities = [
        Entity(id=f"e{i}", name=f"Entity {i}", type=rng.choice(["Person", "Org", "Drug"]))
        for i in range(n_entities)
    ]
    facts = []
    for i in range(n_facts):
        literal = rng.random() < 0.1
        facts.append(
            Fact(
                id=f"f{i}",
                subject_id=f"e{rng.randrange(n_entities)}",
                predicate=rng.choice(["treats", "causes", "works_at", "knows", "part_of"]),
                object_id=None if literal else f"e{rng.randrange(n_entities)}",
                object_value=str(rng.random()) if literal else None,
                confidence=rng.random(),
                valid_from=start + timedelta(days=rng.randrange(1000)),
            )
        )
    return entities, facts


def _us(dt: datetime | None) -> int | None:
    return None if dt is None else (dt - EPOCH) // US


def baseline_seconds(path: Path, entities: Sequence[Entity], facts: Sequence[Fact]) -> float:
    """The same rows through bare executemany: no keys, indexes, upsert or change log."""
    entity_rows = [(e.id, e.name, e.type, "[]", e.summary, None, None, None, 0) for e in entities]
    fact_rows = [
        (
            f.id,
            f.subject_id,
            f.predicate,
            f.object_id,
            f.object_value,
            f.confidence,
            f.support,
            _us(f.valid_from),
            _us(f.valid_to),
            _us(f.recorded_at),
            None,
            "",
            f.status.value,
            None,
        )
        for f in facts
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE entities (" + ", ".join(f"c{i}" for i in range(9)) + ")")
    conn.execute("CREATE TABLE facts (" + ", ".join(f"c{i}" for i in range(14)) + ")")
    began = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO entities VALUES ({', '.join('?' * 9)})", entity_rows)
    conn.executemany(f"INSERT INTO facts VALUES ({', '.join('?' * 14)})", fact_rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


def timings_ms(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]


def make_chunks(rng: random.Random, n: int, dim: int) -> tuple[list[str], list[Chunk]]:
    vocabulary = [f"w{i}" for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(vocabulary))]  # Zipf-like, as in real text
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    chunks = [
        Chunk(
            id=f"c{i}",
            source_id="s0",
            ordinal=i,
            text=" ".join(rng.choices(vocabulary, weights, k=60)),
            embedding=vectors[i].tolist(),
        )
        for i in range(n)
    ]
    return vocabulary, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(7)
    entities, facts = make_graph(rng, args.entities, args.facts)

    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_seconds(Path(tmp) / "baseline.db", entities, facts)
        with SQLiteGraphStore(Path(tmp) / "store.db") as store:
            began = time.perf_counter()
            with store.transaction():
                store.upsert_entities(entities)
                store.upsert_facts(facts)
            bulk = time.perf_counter() - began
            print(f"bulk upsert {len(entities)} entities + {len(facts)} facts, one transaction")
            print(f"  store     {bulk:6.2f} s   (target < 2 s)")
            print(f"  baseline  {base:6.2f} s   raw executemany, no indexes or change log")
            print(f"  ratio     {bulk / base:6.1f} x baseline")

            seeds = [f"e{rng.randrange(args.entities)}" for _ in range(args.queries)]
            sizes = [len(store.neighbourhood([s], hops=2)) for s in seeds[:100]]
            it = iter(seeds * 2)
            p50, p95 = timings_ms(lambda: store.neighbourhood([next(it)], hops=2), args.queries)
            print(
                f"2-hop neighbourhood over {len(facts)} facts (~{statistics.mean(sizes):.0f} facts)"
            )
            print(f"  p50 {p50:.2f} ms   p95 {p95:.2f} ms   (target p50 <= 2 ms)")

            vocabulary, chunks = make_chunks(rng, args.chunks, args.dim)
            with store.transaction():
                store.upsert_sources([Source(id="s0", text="benchmark corpus")])
                store.upsert_chunks(chunks)
            queries = iter(
                [" ".join(rng.sample(vocabulary[:2000], 3)) for _ in range(args.queries)]
            )
            p50, p95 = timings_ms(lambda: store.search_chunks_text(next(queries)), args.queries)
            print(f"BM25 search over {len(chunks)} chunks (3-term queries, k=10)")
            print(f"  p50 {p50:.2f} ms   p95 {p95:.2f} ms")

            store.search_chunks_vector(chunks[0].embedding or [])  # builds the matrix once
            vectors = iter(np.random.default_rng(1).standard_normal((args.queries, args.dim)))
            p50, p95 = timings_ms(lambda: store.search_chunks_vector(next(vectors)), args.queries)
            print(f"vector search over {len(chunks)} chunks x {args.dim} dims (k=10)")
            print(f"  p50 {p50:.2f} ms   p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
