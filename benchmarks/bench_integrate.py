"""Integration throughput without the LLM: synthetic extractions into a fresh SQLite store.

    .venv/bin/python benchmarks/bench_integrate.py [--docs 2000] [--facts 25]
        [--entities 5000] [--embedder hashing|minilm] [--batch 50] [--profile]

Documents are dated one after another. Each is about `--cast` entities drawn from a Zipf-like
vocabulary (popular entities recur, the tail keeps adding new names, as in a literature
stream) and states `--facts` candidate facts among them: 10% with literal objects, 20% on
functional predicates whose object changes over time (so conflicts get retired). Every
document is integrated twice, into fresh stores, with one `Resolver` for each run: with
`graph.construct.integrate` (one transaction per document), and `--batch` documents at a time
with `integrate_many` (one transaction per batch), the way the batch builder does it.

Baseline, measured in the same run: the same number of facts, precomputed, written with one
raw `store.upsert_facts` in one transaction into a fresh store. Prints facts/s for each and the
ratio to the baseline (target: >= 20,000 facts/s); never asserts.

Ceiling, also measured in the same run: every write the batched run made (sources, chunks,
entities, facts, evidence, retirements), replayed batch by batch into a fresh store with none
of the constructor's work: what the store itself costs, so the most any constructor could reach
over it on this machine.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evergraph.embed.base import Embedder
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.chunking import chunk_source
from evergraph.graph.construct import IntegrationReport, integrate, integrate_many
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, Entity, Fact, Source
from evergraph.graph.resolve import Resolver
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.graph.store.sqlite import SQLiteGraphStore

TYPES = ("Person", "Organization", "Method", "Dataset", "Place")
WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "kappa",
    "sigma",
    "omega",
    "nova",
    "terra",
    "luna",
    "sol",
    "aqua",
    "ignis",
    "ventus",
    "umbra",
    "lux",
    "magna",
    "parva",
    "prima",
    "nexus",
    "vertex",
    "cortex",
    "matrix",
    "vector",
    "tensor",
    "graph",
    "field",
    "wave",
    "pulse",
    "core",
)
PLAIN = ("uses", "cites", "part_of", "located_in", "evaluated_on", "related_to", "improves")
FUNCTIONAL = ("leader", "headquarters")
SCHEMA = GraphSchema(
    relations=[RelationType(name=p, functional=True) for p in FUNCTIONAL]
    + [RelationType(name=p) for p in PLAIN]
)
START = datetime(2000, 1, 1, tzinfo=UTC)
BATCH = 50  # documents per integrate_many call; the builder's windows are 16 at its defaults


@dataclass(frozen=True)
class Workload:
    docs: list[tuple[Source, list[Chunk], DocumentExtraction]]
    facts: int


def vocabulary(rng: random.Random, n: int) -> list[tuple[str, str]]:
    names: set[str] = set()
    while len(names) < n:
        names.add(f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.randrange(1000)}")
    return [(name, TYPES[i % len(TYPES)]) for i, name in enumerate(sorted(names))]


def workload(
    rng: random.Random, n_docs: int, per_doc: int, cast_size: int, n_entities: int
) -> Workload:
    vocab = vocabulary(rng, n_entities)
    weights = [1 / (i + 1) ** 0.8 for i in range(len(vocab))]  # Zipf-like popularity
    docs = []
    for d in range(n_docs):
        cast: dict[tuple[str, str], None] = {}
        while len(cast) < min(cast_size, len(vocab)):
            cast[rng.choices(vocab, weights)[0]] = None
        lines, triples = [], []
        date = START + timedelta(days=3 * d)
        for i in range(per_doc):
            (s, st), (o, ot) = rng.sample(list(cast), 2)
            predicate = rng.choice(FUNCTIONAL) if rng.random() < 0.2 else rng.choice(PLAIN)
            if predicate in FUNCTIONAL and rng.random() > 0.1:  # 10% disagree with the era
                era = random.Random(f"{s}|{predicate}|{date.year // 4}")
                o, ot = era.choice(vocab[:500])  # holds for about four years, then changes
            literal = f"{rng.randrange(100)} units" if rng.random() < 0.1 else None
            line = f"{s} {predicate} {literal or o} (claim {i})."
            lines.append(line)
            triples.append(
                (Mention(name=s, type=st), predicate, Mention(name=o, type=ot), literal, line)
            )
        text = " ".join(lines)
        source = Document(f"doc-{d}", f"Document {d}", text, date, "", {}, "bench").to_source()
        chunks = chunk_source(source, max_chars=len(text) + 1)
        facts = [
            CandidateFact(
                subject=s,
                predicate=p,
                object=None if literal else o,
                object_value=literal,
                quote=line,
                chunk_id=chunks[0].id,
                agreement=(a := rng.choice((0.4, 0.6, 0.8, 1.0))),
                confidence=min(a, 0.95),
            )
            for s, p, o, literal, line in triples
        ]
        extraction = DocumentExtraction(source_id=source.id, facts=facts, model="synthetic")
        docs.append((source, chunks, extraction))
    return Workload(docs, n_docs * per_doc)


Write = tuple[str, tuple[Any, ...], dict[str, Any]]  # a store method's name and arguments
WRITES = (
    "upsert_sources",
    "upsert_chunks",
    "upsert_entities",
    "upsert_facts",
    "add_evidence",
    "retire_fact",
)


class RecordingStore(SQLiteGraphStore):
    """Keeps the writes of each outermost transaction, so that `replay` can make them again
    without the constructor."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[Write]] = []
        self._depth = 0
        for name in WRITES:
            setattr(self, name, self._recorded(name, getattr(self, name)))

    def _recorded(self, name: str, write: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            with self.transaction():  # (a write outside one is a transaction of its own)
                self.batches[-1].append((name, args, kwargs))
                write(*args, **kwargs)

        return call

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        if self._depth == 1:
            self.batches.append([])
        try:
            with super().transaction():
                yield
        finally:
            self._depth -= 1


def replay(path: Path, batches: list[list[Write]]) -> float:
    """The recorded writes into a fresh store, one transaction per batch as recorded."""
    with SQLiteGraphStore(path) as store:
        began = time.perf_counter()
        for writes in batches:
            with store.transaction():
                for name, args, kwargs in writes:
                    getattr(store, name)(*args, **kwargs)
        return time.perf_counter() - began


def run_integrate(
    store: SQLiteGraphStore, work: Workload, embedder: Embedder, batch: int
) -> tuple[float, float, IntegrationReport]:
    """Each document in its own transaction (`integrate`, batch 0), or `batch` documents at a
    time through `integrate_many` (one transaction each), one `Resolver` for the run."""
    with store:
        resolver = Resolver(store, embedder)
        total = IntegrationReport()
        began, cpu = time.perf_counter(), time.process_time()
        if batch <= 0:
            for source, chunks, extraction in work.docs:
                total += integrate(
                    store,
                    source,
                    chunks,
                    extraction,
                    embedder=embedder,
                    schema=SCHEMA,
                    resolver=resolver,
                )
        for start in range(0, len(work.docs) if batch > 0 else 0, max(batch, 1)):
            for outcome in integrate_many(
                store,
                work.docs[start : start + batch],
                embedder=embedder,
                schema=SCHEMA,
                resolver=resolver,
            ):
                if isinstance(outcome, Exception):
                    raise outcome
                total += outcome
        return time.perf_counter() - began, time.process_time() - cpu, total


def run_baseline(path: Path, n: int, n_entities: int) -> float:
    """`n` precomputed facts over `n_entities` entities, one upsert_facts in one transaction."""
    entities = [Entity(id=f"e{i}", name=f"Entity {i}") for i in range(n_entities)]
    facts = [
        Fact(
            id=f"f{i}",
            subject_id=f"e{i % n_entities}",
            predicate=PLAIN[i % len(PLAIN)],
            object_id=f"e{(i * 7 + 1) % n_entities}",
            confidence=0.8,
            valid_from=START + timedelta(days=i % 6000),
        )
        for i in range(n)
    ]
    with SQLiteGraphStore(path) as store:
        store.upsert_entities(entities)
        began = time.perf_counter()
        with store.transaction():
            store.upsert_facts(facts)
        return time.perf_counter() - began


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--facts", type=int, default=25, help="candidate facts per document")
    p.add_argument("--cast", type=int, default=12, help="entities each document is about")
    p.add_argument("--entities", type=int, default=5000, help="size of the name vocabulary")
    p.add_argument("--embedder", choices=["hashing", "minilm"], default="hashing")
    p.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help="documents per integrate_many call (one transaction each)",
    )
    p.add_argument("--profile", action="store_true", help="print where integrate spends its time")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    work = workload(random.Random(args.seed), args.docs, args.facts, args.cast, args.entities)
    # The builder holds one window of inputs; this holds all 2,000 documents' (590k objects),
    # which the collector would walk again and again (10% of the time): not integration's cost.
    gc.freeze()
    embedder: Embedder = HashingEmbedder()
    if args.embedder == "minilm":
        from evergraph.config import EmbedSettings
        from evergraph.embed.sentence import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(EmbedSettings())
    print(
        f"integrate ({embedder.name}): {args.docs} documents x {args.facts} candidate facts "
        f"about {args.cast} entities each, from a vocabulary of {args.entities}"
    )
    profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU: a busy machine
    with tempfile.TemporaryDirectory() as tmp:
        base = run_baseline(Path(tmp) / "baseline.db", work.facts, args.entities)
        base_rate = work.facts / base
        rows = [("one document per transaction (integrate)", 0)]
        rows.append((f"batches of {args.batch} (integrate_many)", args.batch))
        for label, batch in rows:
            if profiler and batch:
                profiler.enable()
            store = SQLiteGraphStore(Path(tmp) / f"{batch}.db")
            seconds, cpu, r = run_integrate(store, work, embedder, batch)
            if profiler:
                profiler.disable()
            rate = work.facts / seconds
            print(f"{label}:")
            print(
                f"  {r.facts_created} facts created, {r.facts_reinforced} reinforced, "
                f"{r.retired} retired, {r.contested} contested; {r.entities_created} entities, "
                f"{r.merges} merges; {r.evidence_added} evidence"
            )
            print(
                f"  {seconds:.2f} s: {rate:,.0f} facts/s, {args.docs / seconds:,.0f} documents/s; "
                f"target >= 20,000 facts/s {'met' if rate >= 20_000 else 'NOT met'}; "
                f"{base_rate / rate:.1f}x the time of the raw write"
            )
            print(  # on a shared machine the wall clock also counts other processes' turns
                f"  {cpu:.2f} s of this process's CPU: {work.facts / cpu:,.0f} facts per CPU "
                f"second (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
        # Recorded in a run of its own: records kept alive would slow the timed run's collector.
        recorder = RecordingStore(Path(tmp) / "recorded.db")
        run_integrate(recorder, work, embedder, args.batch)
        alone = replay(Path(tmp) / "replay.db", recorder.batches)
        print(
            f"ceiling: the batched run's writes replayed without the constructor "
            f"({len(recorder.batches)} transactions): {alone:.2f} s, "
            f"{work.facts / alone:,.0f} facts/s"
        )
    print(f"baseline: one raw upsert_facts of {work.facts} facts: {base:.2f} s, ", end="")
    print(f"{base_rate:,.0f} facts/s")
    if profiler:
        print("profile of the batched run:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
