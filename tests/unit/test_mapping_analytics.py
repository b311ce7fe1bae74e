"""Analytics on synthetic graphs: community history, bridges and hubs, "as of" a date."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import networkx as nx

from evergraph.mapping.analytics import analyse, centrality, cooccurrence, events
from evergraph.mapping.occurrences import Occurrences
from evergraph.mapping.periods import Freq
from tests.unit.mapping_fixtures import run_map


def occurrences(papers: dict[str, tuple[str, list[str]]]) -> Occurrences:
    occ = Occurrences()
    for paper, (date, concepts) in papers.items():
        occ.papers[paper] = datetime.fromisoformat(date).replace(tzinfo=UTC)
        occ.by_paper[paper] = set(concepts)
    return occ


def test_cooccurrence_weights_count_papers() -> None:
    occ = occurrences({"x": ("2007-01-01", ["a", "b", "c"]), "y": ("2007-02-01", ["a", "b"])})
    g = cooccurrence(occ, ["x", "y"])
    assert g["a"]["b"]["weight"] == 2 and g["a"]["c"]["weight"] == 1
    assert cooccurrence(occ, ["y"]).number_of_nodes() == 2


def test_a_community_that_splits_then_merges_again() -> None:
    ab, cd, abcd = frozenset("ab"), frozenset("cd"), frozenset("abcd")
    split = events("2008", [abcd], [ab, cd])
    assert [(e.kind, e.before, e.after) for e in split] == [("split", [0], [0, 1])]
    merged = events("2009", [ab, cd], [abcd])
    assert [(e.kind, e.before, e.after) for e in merged] == [("merged", [0, 1], [0])]
    kinds = {e.kind for e in events("2010", [ab], [frozenset("abx"), frozenset("yz")])}
    assert kinds == {"continued", "new"}
    assert [e.kind for e in events("2011", [ab], [frozenset("yz")])] == ["ended", "new"]


def test_the_node_joining_two_cliques_is_the_bridge_and_the_best_connected_is_the_hub() -> None:
    g = nx.Graph()
    left, right = ["l1", "l2", "l3", "l4"], ["r1", "r2", "r3"]
    g.add_edges_from(combinations(left, 2), confidence=1.0)
    g.add_edges_from(combinations(right, 2), confidence=1.0)
    g.add_edges_from([("l1", "bridge"), ("bridge", "r1")], confidence=1.0)
    g.add_edges_from([("l1", f"leaf{i}") for i in range(4)], confidence=1.0)
    found = centrality(g, [frozenset(left), frozenset(right), frozenset({"bridge"})])
    by_name = {c.concept: c for c in found}
    assert max(found, key=lambda c: c.degree).concept == "l1"  # 3 + 1 + 4 neighbours
    assert max(found, key=lambda c: c.pagerank).concept == "l1"
    assert by_name["bridge"].communities_bridged == 2
    assert by_name["bridge"].betweenness > by_name["r2"].betweenness
    assert by_name["bridge"].betweenness > by_name["l2"].betweenness


def test_analysis_of_a_mapped_store_as_of_any_date(tmp_path: Path) -> None:
    _, store = run_map(tmp_path, tmp_path / "out")
    whole = analyse(store, freq=Freq.year, min_papers=2)
    names = {c: whole.name(c) for c in whole.frequency}
    counts = {names[c]: v for c, v in whole.frequency.items()}
    assert whole.periods == ["2007", "2008"] and whole.totals == [2, 4]
    assert counts["dark matter"] == [2, 2] and counts["weak lensing"] == [0, 3]
    tested = {names[t.concept] for t in whole.trends}
    assert "weak lensing" in tested and "exoplanets" not in tested  # one paper: not tested
    assert {whole.name(c.concept) for c in whole.centrality} >= {"dark matter", "exoplanets"}
    assert any(len(cs) > 0 for cs in whole.communities.values())

    early = analyse(store, as_of=datetime(2007, 12, 31, tzinfo=UTC), freq=Freq.quarter)
    early_names = {early.name(c) for c in early.frequency}
    assert early.periods == ["2007-Q1", "2007-Q2"] and early.totals == [1, 1]
    assert early_names == {"dark matter", "N-body simulations", "galaxy clusters"}
    assert {early.name(c.concept) for c in early.centrality} == early_names


def test_since_a_date_drops_earlier_papers_from_the_periods_not_from_the_graph(
    tmp_path: Path,
) -> None:
    _, store = run_map(tmp_path, tmp_path / "out")
    late = analyse(store, since=datetime(2008, 1, 1, tzinfo=UTC), freq=Freq.year, min_papers=2)
    assert late.periods == ["2008"] and late.totals == [4]
    assert "N-body simulations" not in {late.name(c) for c in late.frequency}  # 2007 only
    assert "N-body simulations" in {late.name(c.concept) for c in late.centrality}


def test_spellings_and_types_of_one_name_are_one_concept(tmp_path: Path) -> None:
    """The tagger types and spells a concept as it likes: the map counts the name."""
    from evergraph.graph.models import Entity, Fact, Source
    from evergraph.graph.store.sqlite import SQLiteGraphStore
    from evergraph.mapping.concepts import APPEARS_IN, CO_OCCURS

    def day(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    papers = {"p1": "2007-01-05", "p2": "2007-02-05", "p3": "2007-02-20"}
    found = {"Black Holes": ("object", ["p1"]), "black hole": ("field", ["p2", "p3"]),
             "quasars": ("object", ["p1", "p3"])}  # fmt: skip
    with SQLiteGraphStore(tmp_path / "graph.db") as store:
        store.upsert_sources(
            [Source(id=k, key=k, text=k, published_at=day(d)) for k, d in papers.items()]
        )
        store.upsert_entities(
            [
                Entity(id=name, name=name, type=t, mentions=len(ps))
                for name, (t, ps) in found.items()
            ]
        )
        facts = [
            Fact(id=f"{name}@{p}", subject_id=name, predicate=APPEARS_IN, object_value=p,
                 confidence=0.9, valid_from=day(papers[p]))
            for name, (_, ps) in found.items()
            for p in ps
        ]  # fmt: skip
        for p, holes in [("p1", "Black Holes"), ("p3", "black hole")]:
            facts.append(
                Fact(id=f"q@{p}", subject_id=holes, predicate=CO_OCCURS, object_id="quasars",
                     confidence=0.9, valid_from=day(papers[p]))
            )  # fmt: skip
        store.upsert_facts(facts)
        a = analyse(store, freq=Freq.month, min_papers=2)
    counts = {a.name(c): v for c, v in a.frequency.items()}
    assert counts == {"black hole": [1, 2], "quasars": [1, 1]}  # the commonest spelling
    (hole,) = [c for c in a.frequency if a.name(c) == "black hole"]
    assert a.occurrences.concepts[hole].type == "field"  # the commonest type
    assert sorted(a.graph.nodes) == sorted(a.frequency) and a.graph.number_of_edges() == 1
    assert a.graph[hole]["quasar"]["confidence"] > 1  # both papers' edges, summed
