"""Speed of hybrid retrieval over a 100k-chunk SQLite store, against BM25 alone as the store
gives it (the baseline), measured in the same run.

    .venv/bin/python benchmarks/bench_retrieval.py [--chunks 100000] [--store PATH]

Synthetic corpus: Zipf-distributed pseudo-words, 60-120 per chunk; a graph of `--entities`
entities and `--facts` facts whose evidence points at chunks that name both ends; each chunk
is titled by the first entity it names, so title links follow the other name (5 documents
share a title, as in MuSiQue); embeddings from the hashing embedder (384 dims; texts sharing
words are similar), so every retriever has real work to do. Queries are questions made of
one chunk's words and entity names, with function words, as users type them. The store is
kept at `--store` and reused when it holds the expected number of chunks.

Prints p50/p95 per retriever and the ratio to the baseline's p50; never asserts (timings
depend on the machine). Target: hybrid p50 <= 50 ms at 100k chunks.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.models import Chunk, Entity, Evidence, Fact
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.graph.store.sqlite_codec import fts_query
from evergraph.retrieval.hybrid import ALL_MODES, HybridRetriever, Mode
from evergraph.retrieval.index import Passage, index_passages
from evergraph.retrieval.text import content_query

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
# The head of the Zipf curve is English function words, as in real text: a raw query's "the"
# or "of" then matches nearly every chunk, as it does in a real corpus.
FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "has",
    "been",
    "would",
    "if",
    "will",
]
DIM = 384
K = 10


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = dict.fromkeys(FUNCTION_WORDS)
    while len(words) < size:
        words["".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))] = None
    return list(words)


def build(path: Path, rng: random.Random, args: argparse.Namespace) -> SQLiteGraphStore:
    store = SQLiteGraphStore(path)
    if store.stats().chunks == args.chunks:
        print(f"reusing {path}")
        return store
    embedder = HashingEmbedder(DIM)
    vocab = vocabulary(rng, 30_000)
    weights = [1 / (r + 1) for r in range(len(vocab))]  # Zipf
    firsts, lasts = vocab[-args.entities :], vocab[5000:5300]  # rare first names: unique pairs
    names = [f"{a.title()} {lasts[i % len(lasts)].title()}" for i, a in enumerate(firsts)]
    started = time.perf_counter()
    passages, mentions = [], []
    for _ in range(args.chunks):
        body = rng.choices(vocab, weights, k=rng.randint(60, 120))
        mentioned = rng.sample(names, 2)  # entity mentions, later the facts' evidence
        for name in mentioned:
            body.insert(rng.randrange(len(body)), name)
        passages.append(Passage(mentioned[0], " ".join(body)))
        mentions.append(mentioned)
    index_passages(store, embedder, passages, batch=2000)
    by_name = {n: f"e{i}" for i, n in enumerate(names)}
    store.upsert_entities(
        [
            Entity(id=by_name[n], name=n, embedding=v.tolist())
            for n, v in zip(names, embedder.embed(names), strict=True)
        ]
    )
    facts, evidence = [], []
    for i in range(args.facts):
        at = rng.randrange(len(passages))
        p, (subject, obj) = passages[at], mentions[at]
        facts.append(
            Fact(
                id=f"f{i}",
                subject_id=by_name[subject],
                predicate=rng.choice(["part_of", "knows", "located_in", "made_by"]),
                object_id=by_name[obj],
                confidence=rng.uniform(0.4, 0.95),
            )
        )
        evidence.append(Evidence(fact_id=f"f{i}", source_id=p.source_id, chunk_id=p.chunk_id))
    store.upsert_facts(facts)
    store.add_evidence(evidence)
    print(
        f"built {args.chunks} chunks, {len(names)} entities, {args.facts} facts in "
        f"{time.perf_counter() - started:.0f} s at {path}"
    )
    return store


def questions(store: SQLiteGraphStore, rng: random.Random, n: int) -> list[str]:
    """Questions as users ask them: function words around an entity name and two rarer words
    of one chunk (a word in under 1% of a 5,000-chunk sample)."""
    chunks, _ = store.scan(Chunk, limit=5000)
    df = Counter(w for c in chunks for w in set(c.text.split()))
    out = []
    for chunk in rng.sample(chunks, n):
        words = chunk.text.split()
        name = next(f"{a} {b}" for a, b in itertools.pairwise(words) if a.istitle() and b.istitle())
        rare = [w for w in words if df[w] < len(chunks) / 100 and not w.istitle()]
        a, b = rng.sample(rare, 2)
        out.append(f"What is the {a} of {name} in the {b}?")
    return out


# What SQLiteGraphStore.search_chunks_text could run instead: score and cut to k inside FTS5,
# then join the k winners to their chunks (the store's query joins every match first).
SCORE_THEN_JOIN = (
    "SELECT c.id, c.source_id, c.text, -s FROM (SELECT rowid AS r, bm25(chunks_fts) AS s "
    "FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?) JOIN chunks c ON c.pk = r "
    "ORDER BY s"
)


def timed(fn: Callable[[str], object], queries: Sequence[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per query. On a shared machine the wall clock includes
    waiting for a core; the CPU time is what the query costs (all threads counted)."""
    for q in queries[:5]:  # warm-up: vector matrix load, page cache
        fn(q)
    wall, cpu = [], []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(q)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--store", type=Path, help="kept and reused (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    path = args.store or Path(tempfile.mkdtemp()) / "bench_retrieval.db"
    with build(path, rng, args) as store:
        started = time.perf_counter()
        retriever = HybridRetriever(store, HashingEmbedder(DIM))
        names = len(retriever.titles())
        print(f"title index: {names} names in {time.perf_counter() - started:.1f} s (once)")
        queries = questions(store, rng, args.queries)

        def mode(modes: frozenset[Mode]) -> Callable[[str], object]:
            return lambda q: retriever.search(q, k=K, modes=modes)

        raw = sqlite3.connect(path)
        runs = {
            "baseline: store BM25, raw query": lambda q: store.search_chunks_text(q, k=K),
            "proposed store BM25 (raw SQL)": lambda q: raw.execute(
                SCORE_THEN_JOIN, (fts_query(content_query(q)), K)
            ).fetchall(),
            "bm25 (function words dropped)": mode(frozenset({Mode.BM25})),
            "dense": mode(frozenset({Mode.DENSE})),
            "graph walk": mode(frozenset({Mode.GRAPH})),
            "hybrid bm25+dense": mode(frozenset({Mode.BM25, Mode.DENSE})),
            "hybrid bm25+dense+titles": mode(
                frozenset({Mode.BM25, Mode.DENSE, Mode.NAMED, Mode.TITLES})
            ),
            "hybrid bm25+dense+titles+bridge": mode(
                frozenset({Mode.BM25, Mode.DENSE, Mode.NAMED, Mode.TITLES, Mode.BRIDGE})
            ),
            "hybrid, all (+graph)": mode(ALL_MODES),
        }
        base = None
        load = os.getloadavg()[0]
        print(f"{len(queries)} queries, k={K}, {args.chunks} chunks, load average {load:.1f}")
        print(f"{'':34} {'p50 ms':>8} {'p95 ms':>8} {'p50 cpu ms':>11} {'p50 / baseline':>15}")
        for name, fn in runs.items():
            wall, cpu = timed(fn, queries)
            p50, p95 = statistics.median(wall), statistics.quantiles(wall, n=20)[-1]
            base = base or p50
            cpu50 = statistics.median(cpu)
            print(f"{name:34} {p50:8.1f} {p95:8.1f} {cpu50:11.1f} {p50 / base:14.2f}x")


if __name__ == "__main__":
    main()
