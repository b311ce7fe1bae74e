"""The graph as networkx sees it, as of a time, and the analytics later work builds on.

`to_networkx` reads the whole store page by page (`GraphStore.scan`), keeping the entities
known by `as_of` (first seen by then) and the facts that hold then (`Fact.holds`): nodes are
entities (name, type, mentions), edges are facts keyed by fact id (predicate, confidence,
support, validity, status). Literal objects ("42 mg") are not entities; with `literals=True`
each distinct value becomes a node of kind "literal", otherwise those facts are left out, which
is what centrality and communities want.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import networkx as nx

from evergraph.graph.models import Entity, Fact, content_id
from evergraph.graph.store.base import GraphStore, Record

PAGE = 2000


def records(store: GraphStore, kind: type[Record]) -> Iterator[Record]:
    """Every stored record of a kind, a page at a time."""
    cursor = ""
    while True:
        page, cursor = store.scan(kind, after=cursor, limit=PAGE)
        yield from page
        if not cursor:
            return


def facts_holding(
    store: GraphStore, *, as_of: datetime | None = None, recorded_at: datetime | None = None
) -> Iterator[Fact]:
    return (f for f in records(store, Fact) if f.holds(as_of, recorded_at))


def entities_known(store: GraphStore, *, as_of: datetime | None = None) -> Iterator[Entity]:
    return (
        e
        for e in records(store, Entity)
        if as_of is None or e.first_seen is None or e.first_seen <= as_of
    )


def literal_node(value: str) -> str:
    return "literal:" + content_id(value)


def edge_attributes(f: Fact) -> dict[str, Any]:
    return {
        "predicate": f.predicate,
        "confidence": f.confidence,
        "support": f.support,
        "valid_from": f.valid_from,
        "valid_to": f.valid_to,
        "recorded_at": f.recorded_at,
        "status": f.status.value,
    }


def to_networkx(
    store: GraphStore,
    *,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
    literals: bool = False,
) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph(as_of=as_of, recorded_at=recorded_at)
    for e in entities_known(store, as_of=as_of):
        g.add_node(e.id, kind="entity", name=e.name, type=e.type, mentions=e.mentions)
    for f in facts_holding(store, as_of=as_of, recorded_at=recorded_at):
        if f.object_id is not None:
            target = f.object_id
        elif literals:
            target = literal_node(f.object_value or "")
            g.add_node(target, kind="literal", name=f.object_value or "", type="literal")
        else:
            continue
        g.add_edge(f.subject_id, target, key=f.id, **edge_attributes(f))
    return g


def simple(g: nx.MultiDiGraph, *, weight: str = "confidence") -> nx.Graph:
    """Undirected, one edge per pair of nodes weighing the sum of the facts between them."""
    out = nx.Graph()
    out.add_nodes_from(g.nodes(data=True))
    for u, v, w in g.edges(data=weight, default=1.0):
        if out.has_edge(u, v):
            out[u][v][weight] += w
        else:
            out.add_edge(u, v, **{weight: w})
    return out


def degree(g: nx.MultiDiGraph) -> dict[str, int]:
    """Facts per entity, in and out."""
    return dict(g.degree())


def pagerank(g: nx.MultiDiGraph, *, weight: str = "confidence") -> dict[str, float]:
    """PageRank along fact direction, parallel facts adding their weights."""
    if g.number_of_nodes() == 0:
        return {}
    ranks: dict[str, float] = nx.pagerank(g, weight=weight)
    return ranks


def communities(
    g: nx.MultiDiGraph, *, weight: str = "confidence", resolution: float = 1.0, seed: int = 0
) -> list[set[str]]:
    """Louvain communities of the undirected graph, largest first (seeded: repeatable)."""
    found = nx.community.louvain_communities(
        simple(g, weight=weight), weight=weight, resolution=resolution, seed=seed
    )
    return sorted((set(c) for c in found), key=len, reverse=True)


def top(scores: Mapping[str, float], k: int = 10) -> list[tuple[str, float]]:
    """The k highest scores, ties by id."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
