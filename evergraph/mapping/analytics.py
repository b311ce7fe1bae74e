"""The views of a field, as of any date: frequency, trends, communities and their history,
bridges and hubs.

- **Per period** the co-occurrence graph joins two concepts named by the same paper of that
  period (weight: papers). Its Louvain communities (seeded: the same store gives the same
  answer) are matched to the next period's by member overlap (Jaccard >= `MIN_JACCARD`): one
  community matched by two or more next ones *split*, two or more matched by one next one
  *merged*, unmatched ones *ended* or are *new*.
- **As of the date** the whole graph (`graph.views`: co-occurrence and extracted relations,
  undirected, weights summing fact confidence) gives hubs (degree: distinct neighbours;
  PageRank) and bridges (betweenness: share of shortest paths through a concept), with the
  number of communities among a concept's neighbours. Exact betweenness costs a shortest-path
  search from every node (45 ms each in networkx on a 1,300-concept, 23,000-link map: a
  minute); above `PIVOTS` nodes it is estimated from that many sources drawn with a fixed
  seed, which keeps the top bridges' order at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations, pairwise
from typing import Any

import networkx as nx

from evergraph.graph import views
from evergraph.graph.store.base import GraphStore
from evergraph.mapping.occurrences import Occurrences, read_occurrences
from evergraph.mapping.periods import Freq
from evergraph.mapping.trends import MIN_PAPERS, Trend, trends

MIN_JACCARD = 0.2
PIVOTS = 128  # betweenness: sources sampled above this many nodes
SEED = 0


@dataclass(frozen=True)
class Event:
    period: str  # the later of the two periods compared
    kind: str  # "split", "merged", "continued", "new", "ended"
    before: list[int]  # community numbers in the earlier period
    after: list[int]  # ... and in `period`


@dataclass(frozen=True)
class Centrality:
    concept: str
    degree: int
    pagerank: float
    betweenness: float
    communities_bridged: int  # distinct communities among its neighbours


@dataclass
class Analysis:
    as_of: datetime | None
    freq: Freq
    occurrences: Occurrences
    periods: list[str]
    totals: list[int]  # papers per period
    frequency: dict[str, list[int]]  # concept id -> papers naming it per period
    trends: list[Trend]
    communities: dict[str, list[frozenset[str]]]  # per period, largest first
    events: list[Event]
    graph: Any  # nx.Graph as of the date: concepts, weighted edges
    overall: list[frozenset[str]]  # communities of `graph`
    centrality: list[Centrality]
    edge_periods: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def name(self, concept: str) -> str:
        found = self.occurrences.concepts.get(concept)
        return found.name if found else concept

    def community_of(self) -> dict[str, int]:
        return {c: i for i, members in enumerate(self.overall) for c in members}


def cooccurrence(occ: Occurrences, papers: Iterable[str]) -> Any:
    """Concepts of these papers, joined when one paper names both (weight: such papers)."""
    g = nx.Graph()
    for paper in papers:
        concepts = sorted(occ.by_paper.get(paper, ()))
        g.add_nodes_from(concepts)
        for a, b in combinations(concepts, 2):
            g.add_edge(a, b, weight=g.get_edge_data(a, b, {"weight": 0})["weight"] + 1)
    return g


def match(
    before: Sequence[frozenset[str]], after: Sequence[frozenset[str]], min_jaccard: float
) -> list[tuple[int, int]]:
    """Pairs (earlier community, later community) whose members overlap enough."""
    return [
        (i, j)
        for i, a in enumerate(before)
        for j, b in enumerate(after)
        if len(a & b) / len(a | b) >= min_jaccard
    ]


def events(
    period: str,
    before: Sequence[frozenset[str]],
    after: Sequence[frozenset[str]],
    min_jaccard: float = MIN_JACCARD,
) -> list[Event]:
    links = match(before, after, min_jaccard)
    found: list[Event] = []
    for i in range(len(before)):
        nexts = [j for a, j in links if a == i]
        if not nexts:
            found.append(Event(period, "ended", [i], []))
        elif len(nexts) > 1:
            found.append(Event(period, "split", [i], nexts))
    for j in range(len(after)):
        prevs = [i for i, b in links if b == j]
        if not prevs:
            found.append(Event(period, "new", [], [j]))
        elif len(prevs) > 1:
            found.append(Event(period, "merged", prevs, [j]))
        elif sum(1 for a, _ in links if a == prevs[0]) == 1:
            found.append(Event(period, "continued", prevs, [j]))
    return found


def centrality(g: Any, overall: Sequence[frozenset[str]], seed: int = SEED) -> list[Centrality]:
    """Every concept's hub and bridge scores, highest betweenness first."""
    if g.number_of_nodes() == 0:
        return []
    k = PIVOTS if g.number_of_nodes() > PIVOTS else None
    between = nx.betweenness_centrality(g, k=k, seed=seed)
    ranks = nx.pagerank(g, weight="confidence")
    community = {c: i for i, members in enumerate(overall) for c in members}
    found = [
        Centrality(
            concept=node,
            degree=g.degree(node),
            pagerank=float(ranks[node]),
            betweenness=float(between[node]),
            communities_bridged=len({community.get(m) for m in g.neighbors(node)}),
        )
        for node in g.nodes
    ]
    return sorted(found, key=lambda c: (-c.betweenness, -c.degree, c.concept))


def analyse(
    store: GraphStore,
    *,
    as_of: datetime | None = None,
    since: datetime | None = None,
    freq: Freq = Freq.year,
    min_papers: int = MIN_PAPERS,
    seed: int = SEED,
) -> Analysis:
    """Everything as of `as_of`; the per-period views (frequency, trends, communities per
    period) over the papers since `since`, the whole graph's over all of them."""
    occ = read_occurrences(store, as_of=as_of, since=since)
    periods, totals, frequency = occ.periods(freq), occ.totals(freq), occ.counts(freq)
    communities: dict[str, list[frozenset[str]]] = {}
    edge_periods: dict[tuple[str, str], list[str]] = {}
    for period in periods:
        g = cooccurrence(occ, occ.papers_in(period, freq))
        for a, b in g.edges:
            edge_periods.setdefault((min(a, b), max(a, b)), []).append(period)
        found = views.communities(g, weight="weight", seed=seed) if g.number_of_edges() else []
        communities[period] = [frozenset(c) for c in found]
    history = [
        e
        for earlier, later in pairwise(periods)
        for e in events(later, communities[earlier], communities[later])
    ]
    entities = views.to_networkx(store, as_of=as_of)  # one node per concept, as in `occ`
    whole = views.simple(nx.relabel_nodes(entities, occ.key_of, copy=True))
    whole.remove_edges_from(list(nx.selfloop_edges(whole)))
    overall = (
        [frozenset(c) for c in views.communities(whole, seed=seed)]
        if whole.number_of_edges()
        else []
    )
    return Analysis(
        as_of=as_of,
        freq=freq,
        occurrences=occ,
        periods=periods,
        totals=totals,
        frequency=frequency,
        trends=trends(frequency, totals, min_papers=min_papers),
        communities=communities,
        events=history,
        graph=whole,
        overall=overall,
        centrality=centrality(whole, overall, seed),
        edge_periods=edge_periods,
    )
