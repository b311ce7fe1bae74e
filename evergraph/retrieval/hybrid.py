"""Hybrid retrieval: BM25 and dense vectors from the store, plus title links and graph
expansion, fused with reciprocal rank fusion.

Why RRF: the three retrievers score on unrelated scales (BM25 is unbounded, cosine is in
[-1, 1], PPR sums to 1), so their scores cannot be added; ranks can. RRF (Cormack et al.,
2009) needs no training data and rewards chunks that several retrievers agree on.

`as_of` keeps chunks of documents published by then (a document without a publication date
counts from when it was ingested), and walks only the facts that held then. Each retriever
fetches `depth` candidates; filtering happens after, so an old `as_of` over a young corpus
can return fewer than k hits.

Two rankings come from document titles: `named`, the documents whose titles the query names
(what the question is about, even when BM25 and dense found them already: in "Sick Puppies
or Third Eye Blind?" both bands' articles deserve a vote of their own over the albums that
share their words), and `titles`, those named by the best passages of a first fusion of the
other retrievers (the second hop of a question is often a document its first hop's passage
names and the question does not). Bridge rankings (`bridge.py`) guess that second hop among
the names the best passages give when no title settles it, below the first ranking's best;
a question comparing what it names has no second hop and gets none.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from evergraph.embed.base import Embedder
from evergraph.graph.models import Chunk
from evergraph.graph.store.base import GraphStore
from evergraph.retrieval.bridge import BridgeOptions, bridge_names, bridge_queries, name_forms
from evergraph.retrieval.graph_walk import GraphOptions, graph_search
from evergraph.retrieval.text import compares, content_query, names_any
from evergraph.retrieval.titles import TitleIndex

K = TypeVar("K", bound=Hashable)

RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very first ranks
# Measured on HotpotQA / MuSiQue dev (100 questions each, corpus = all their paragraphs,
# MiniLM), recall@5 of hybrid retrieval: rrf_k 60 .915 / .640, rrf_k 30 .920 / .640, rrf_k 10
# .925 / .655. Few retrievers, each over the whole corpus: their first ranks deserve the
# weight a small k gives them.
HYBRID_RRF_K = 10
# The title rankings weigh 1.5: a document the question (or its first passage) names outranks
# one that BM25 and dense both rank a little higher. Measured as above, recall@2 / @5 with the
# weights of (named, titles): (1, 1) .775 / .935 (HotpotQA) and .48 / .655 (MuSiQue);
# (1, 1.5) .735 / .955 and .48 / .66; (1.5, 1) .795 / .935 and .49 / .655; (1.5, 1.5)
# .78 / .955 and .505 / .66; (2, 2) .78 / .955 and .47 / .625.
TITLE_WEIGHT = 1.5


class Mode(StrEnum):
    BM25 = "bm25"
    DENSE = "dense"
    NAMED = "named"  # documents whose titles the query names
    TITLES = "titles"  # documents whose titles the best passages name
    BRIDGE = "bridge"  # passages writing a name the best passages give, searched densely
    GRAPH = "graph"


ALL_MODES: frozenset[Mode] = frozenset(Mode)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    source_id: str
    text: str  # the chunk's text; for a chunk only the graph found, its evidence quotes
    score: float  # fused RRF score, capped by the hit before (bridge hits stay below the first)
    ranks: Mapping[Mode, int]  # 1-based rank in each retriever that found it


@dataclass(frozen=True)
class HybridOptions:
    depth: int = 30  # candidates taken from each retriever before fusion
    rrf_k: int = HYBRID_RRF_K
    weights: Mapping[Mode, float] = field(
        default_factory=lambda: (
            dict.fromkeys(Mode, 1.0) | dict.fromkeys((Mode.NAMED, Mode.TITLES), TITLE_WEIGHT)
        )
    )
    graph: GraphOptions = field(default_factory=GraphOptions)
    bridge: BridgeOptions = field(default_factory=BridgeOptions)
    link_from: int = 3  # best passages of the first fusion whose named titles are followed
    max_names: int = 5  # titles linked per query (a lookup of its chunks each, unless found)


def rrf(
    rankings: Mapping[K, Sequence[str]],
    *,
    k: int = RRF_K,
    weights: Mapping[K, float] | None = None,
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum over rankings of weight / (k + rank), best first.

    Ties go to the item with the better single rank, then to the earlier ranking's order,
    so the result is deterministic.
    """
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, item in enumerate(dict.fromkeys(ranking), start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    order = sorted(scores, key=lambda i: (-scores[i], best[i]))
    return [(i, scores[i]) for i in order]


class HybridRetriever:
    """Searches one store with one embedder (the one that embedded the store's chunks)."""

    def __init__(
        self, store: GraphStore, embedder: Embedder, options: HybridOptions | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options or HybridOptions()
        self._titles: TitleIndex | None = None  # built on the first search that links titles

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        modes: Collection[Mode] = ALL_MODES,
        as_of: datetime | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """The k best chunks for `query` by the fused ranking of `modes`, leaving out the
        chunk ids in `exclude` (e.g. those an agent has read already)."""
        depth = max(self.options.depth, k) + len(exclude)
        rankings: dict[Mode, list[str]] = {}
        chunks: dict[str, Chunk] = {}
        quotes: dict[str, tuple[str, str]] = {}  # graph-only material: (source id, text)
        if Mode.BM25 in modes:
            found = self.store.search_chunks_text(content_query(query), k=depth)
            rankings[Mode.BM25] = self._keep(found, chunks)
        vector: list[float] | None = None
        if Mode.DENSE in modes or Mode.GRAPH in modes:
            vector = self.embedder.embed([query])[0].tolist()
        if Mode.DENSE in modes and vector is not None:
            found = self.store.search_chunks_vector(vector, k=depth)
            rankings[Mode.DENSE] = self._keep(found, chunks)
        if Mode.GRAPH in modes and vector is not None:
            walked = graph_search(
                self.store, query, vector, k=depth, as_of=as_of, options=self.options.graph
            )
            rankings[Mode.GRAPH] = [h.chunk_id for h in walked]
            for h in walked:
                quotes[h.chunk_id] = (h.source_id, "\n".join(h.quotes))
        if Mode.NAMED in modes or Mode.TITLES in modes:
            named, linked = self._titled(query, rankings, chunks)
            if Mode.NAMED in modes:
                rankings[Mode.NAMED] = named
            if Mode.TITLES in modes:
                rankings[Mode.TITLES] = linked
        skip = set(exclude)
        if as_of is not None:
            as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)  # naive means UTC
            sources = {c.source_id for c in chunks.values()} | {s for s, _ in quotes.values()}
            skip |= self._published_after(sources, as_of, chunks, quotes)
        rankings = {m: [c for c in r if c not in skip] for m, r in rankings.items()}
        fused = rrf(rankings, k=self.options.rrf_k, weights=self.options.weights)
        if Mode.BRIDGE in modes:
            fused, rankings[Mode.BRIDGE] = self._bridged(query, fused, chunks, skip, as_of)
        positions = {m: {c: i for i, c in enumerate(r, start=1)} for m, r in rankings.items()}
        hits = []
        for chunk_id, score in fused[:k]:
            if chunk_id in chunks:
                source_id, text = chunks[chunk_id].source_id, chunks[chunk_id].text
            else:
                source_id, text = quotes[chunk_id]
            ranks = {m: p[chunk_id] for m, p in positions.items() if chunk_id in p}
            hits.append(Hit(chunk_id, source_id, text, score, ranks))
        return hits

    def _bridged(
        self,
        query: str,
        fused: list[tuple[str, float]],
        chunks: dict[str, Chunk],
        skip: set[str],
        as_of: datetime | None,
    ) -> tuple[list[tuple[str, float]], list[str]]:
        """`fused` fused again with the bridge rankings, its first `keep` hits kept first (a
        hit's score is capped by the one before it, so scores never rise down the list), and
        the bridge hits, best guess first."""
        opts = self.options.bridge
        first = [c for c, _ in fused if c in chunks][: opts.passages]
        texts = [chunks[c].text for c in first]
        guesses = [] if compares(query) else bridge_names(query, texts, limit=opts.names)
        if not guesses:
            return fused, []
        vectors = self.embedder.embed(bridge_queries(guesses, query, texts))
        found: dict[int, list[str]] = {}
        each = zip(name_forms(guesses, texts), vectors, strict=True)
        for i, (forms, vector) in enumerate(each, start=1):
            hits = self.store.search_chunks_vector(vector.tolist(), k=opts.depth)
            named = [(c, s) for c, s in hits if names_any(c.text, forms)]
            kept = self._keep(named, chunks)
            found[i] = [c for c in kept if c not in skip and c not in first][: opts.hits]
        if as_of is not None:
            new = {chunks[c].source_id for ranked in found.values() for c in ranked}
            late = self._published_after(new, as_of, chunks, {})
            found = {i: [c for c in r if c not in late] for i, r in found.items()}
        ranked = [c for c, _ in fused]
        head = ranked[: opts.keep]
        rankings = {0: ranked} | found
        weights = {0: 1.0} | {i: opts.weight / i for i in found}
        scores = dict(rrf(rankings, k=self.options.rrf_k, weights=weights))
        order = list(dict.fromkeys([*head, *scores]))
        capped = list(itertools.accumulate((scores[c] for c in order), min))
        bridged = list(dict.fromkeys(c for r in found.values() for c in r))
        return list(zip(order, capped, strict=True)), bridged

    def titles(self) -> TitleIndex:
        """The store's titles, read on first use: a retriever sees the documents that were
        in the store then (the EvidenceLoop makes one retriever per question)."""
        if self._titles is None:
            self._titles = TitleIndex.build(self.store)
        return self._titles

    def _titled(
        self, query: str, rankings: Mapping[Mode, Sequence[str]], chunks: dict[str, Chunk]
    ) -> tuple[list[str], list[str]]:
        """Chunks of the documents the query names, and of those that the best passages of a
        first fusion (of `rankings`) name but that fusion did not rank there already; at
        most `max_names` names in all, the query's first."""
        titles = self.titles()
        opts = self.options
        fused = rrf(rankings, k=opts.rrf_k, weights=opts.weights)
        first = [c for c, _ in fused if c in chunks][: opts.link_from]  # not graph-only quotes
        seen = {chunks[c].source_id for c in first}
        named = dict(titles.mentions(query)[: opts.max_names])
        linked: dict[str, set[str]] = {}
        for text in (chunks[c].text for c in first):
            for name, sources in titles.mentions(text):
                if name in named or sources <= seen:
                    continue
                if len(named) + len(linked) < opts.max_names:
                    linked.setdefault(name, sources)
        candidates = list(chunks.values())  # BM25's order, then dense's
        found = (self._chunk_named(n, s, titles, candidates, chunks) for n, s in named.items())
        links = (self._chunk_named(n, s, titles, candidates, chunks) for n, s in linked.items())
        return [c for c in found if c], [c for c in links if c]

    def _chunk_named(
        self,
        name: str,
        sources: set[str],
        titles: TitleIndex,
        candidates: Sequence[Chunk],
        chunks: dict[str, Chunk],
    ) -> str | None:
        """The chunk a name stands for, of a document it is the whole title of if any, else
        of any so titled (a title can be shared): the first candidate the retrievers found,
        or else the first stored chunk of those documents that writes the name (their first
        if none does), read by an index lookup where a full-text search cost 5-10 ms."""
        exact = titles.titled(name) & sources
        stored: list[Chunk] | None = None  # read once, if at all
        for group in (exact, sources) if exact and exact != sources else (sources,):
            known = next((c.id for c in candidates if c.source_id in group), None)
            if known is None:
                if stored is None:
                    stored = self.store.chunks_of(sorted(sources))
                own = [c for c in stored if c.source_id in group]
                pick = next((c for c in own if names_any(c.text, [name])), own[0] if own else None)
                if pick is not None:
                    known = chunks.setdefault(pick.id, pick).id
            if known is not None:
                return known
        return None

    @staticmethod
    def _keep(found: list[tuple[Chunk, float]], chunks: dict[str, Chunk]) -> list[str]:
        for chunk, _ in found:
            chunks.setdefault(chunk.id, chunk)
        return [chunk.id for chunk, _ in found]

    def _published_after(
        self,
        source_ids: set[str],
        as_of: datetime,
        chunks: Mapping[str, Chunk],
        quotes: Mapping[str, tuple[str, str]],
    ) -> set[str]:
        """Chunk ids whose document was not yet published (or ingested) at `as_of`."""
        late = set()
        for source_id in source_ids:
            source = self.store.get_source(source_id)
            if source is None or (source.published_at or source.ingested_at) > as_of:
                late.add(source_id)
        return {c for c, ch in chunks.items() if ch.source_id in late} | {
            c for c, (s, _) in quotes.items() if s in late
        }
