"""The networkx view as of a time, its analytics, and the GraphML / JSON / CSV exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

from evergraph.errors import UsageError
from evergraph.graph.export import export_graph
from evergraph.graph.resolve import Resolver
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.graph.views import communities, degree, pagerank, to_networkx, top

from .graph_docs import EMBEDDER, Claim, Doc, entity, ingest, year


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    """Two clusters (a-b-c, x-y-z) joined by one weak fact; a capital that changes in 2015;
    a literal; and an entity first seen in 2020."""
    with SQLiteGraphStore(tmp_path / "graph.db") as s:
        resolver = Resolver(s, EMBEDDER)
        claims = [
            Claim("A", "knows", "B", agreement=0.9),
            Claim("B", "knows", "C", agreement=0.9),
            Claim("C", "knows", "A", agreement=0.9),
            Claim("X", "knows", "Y", agreement=0.9),
            Claim("Y", "knows", "Z", agreement=0.9),
            Claim("Z", "knows", "X", agreement=0.9),
            Claim("C", "knows", "X", agreement=0.1),
            Claim("A", "weight", value="42 kg"),
            Claim("X", "capital", "Old"),
        ]
        ingest(s, Doc(claims, date=year(2010)), resolver=resolver)
        ingest(s, Doc([Claim("X", "capital", "New")], date=year(2015)), resolver=resolver)
        ingest(s, Doc([Claim("Late", "knows", "A")], date=year(2020)), resolver=resolver)
        ingest(
            s, Doc([Claim("A", "knows", "B", agreement=0.5)], date=year(2021)), resolver=resolver
        )
        yield s


def names(store: SQLiteGraphStore, g: nx.MultiDiGraph) -> set[tuple[str, str, str]]:
    return {
        (g.nodes[u]["name"], d["predicate"], g.nodes[v]["name"]) for u, v, d in g.edges(data=True)
    }


def test_the_view_holds_entities_and_the_facts_of_its_time(store: SQLiteGraphStore) -> None:
    now = to_networkx(store)
    assert now.number_of_nodes() == 9 and now.number_of_edges() == 9
    assert ("X", "capital", "New") in names(store, now)
    assert ("X", "capital", "Old") not in names(store, now)
    a, b = entity(store, "A"), entity(store, "B")
    (edge,) = now[a.id][b.id].values()
    assert edge["predicate"] == "knows" and edge["support"] == 2
    assert edge["confidence"] == pytest.approx(1 - 0.1 * 0.5)
    assert edge["valid_from"] == year(2010) and edge["status"] == "active"
    assert now.nodes[a.id] == {"kind": "entity", "name": "A", "type": "Thing", "mentions": 3}

    then = to_networkx(store, as_of=year(2012))
    assert ("X", "capital", "Old") in names(store, then)
    assert entity(store, "Late").id not in then  # first seen in 2020
    assert then.number_of_edges() == 8


def test_literals_become_nodes_on_request(store: SQLiteGraphStore) -> None:
    g = to_networkx(store, literals=True)
    (literal,) = [n for n, d in g.nodes(data=True) if d["kind"] == "literal"]
    assert g.nodes[literal]["name"] == "42 kg"
    assert g.number_of_nodes() == g.number_of_edges() == 10


def test_analytics(store: SQLiteGraphStore) -> None:
    g = to_networkx(store)
    a, x, late = (entity(store, n).id for n in ("A", "X", "Late"))
    assert degree(g)[a] == 3 and degree(g)[late] == 1  # the literal is no edge
    ranks = pagerank(g)
    assert sum(ranks.values()) == pytest.approx(1.0)
    assert top(ranks, 3)[0][0] in {a, x, entity(store, "B").id}
    groups = communities(g)
    cluster_of = {n: i for i, c in enumerate(groups) for n in c}
    abc = {cluster_of[entity(store, n).id] for n in "ABC"}
    xyz = {cluster_of[entity(store, n).id] for n in "XYZ"}
    assert len(abc) == len(xyz) == 1 and abc != xyz
    assert communities(g) == groups  # seeded
    assert pagerank(nx.MultiDiGraph()) == {}
    assert top({"a": 1, "b": 3, "c": 3}, 2) == [("b", 3), ("c", 3)]


def test_graphml_export_reads_back(store: SQLiteGraphStore, tmp_path: Path) -> None:
    (path,) = export_graph(store, "graphml", tmp_path / "out" / "g.graphml", as_of=year(2012))
    g = nx.read_graphml(path)
    assert g.number_of_nodes() == 8  # the seven entities known in 2012 and the literal
    edges = [d for _, _, d in g.edges(data=True)]
    assert len(edges) == 9
    assert {d["valid_from"] for d in edges} == {year(2010).isoformat()}
    closed = [d for d in edges if "valid_to" in d]  # None is left out
    assert [(d["predicate"], d["valid_to"]) for d in closed] == [
        ("capital", year(2015).isoformat())
    ]


def test_json_export_is_node_link(store: SQLiteGraphStore, tmp_path: Path) -> None:
    (path,) = export_graph(store, "json", tmp_path / "g.json")
    data = json.loads(path.read_text())
    g = nx.node_link_graph(data, edges="edges")
    assert g.is_multigraph() and g.is_directed()
    assert g.number_of_edges() == 10
    assert any(d.get("name") == "New" for _, d in g.nodes(data=True))


def test_csv_export_with_evidence_counts(store: SQLiteGraphStore, tmp_path: Path) -> None:
    entities_csv, facts_csv = export_graph(store, "csv", tmp_path / "tables")
    entities = list(csv.DictReader(entities_csv.open()))
    assert len(entities) == 9 and {"id", "name", "type", "aliases"} <= set(entities[0])
    facts = {
        (r["subject"], r["predicate"], r["object"] or r["object_value"]): r
        for r in csv.DictReader(facts_csv.open())
    }
    ab = facts[("A", "knows", "B")]
    assert (ab["evidence"], ab["support"], ab["status"]) == ("2", "2", "active")
    assert facts[("A", "weight", "42 kg")]["object_id"] == ""
    assert ("X", "capital", "Old") not in facts
    _, old = export_graph(store, "csv", tmp_path / "2012", as_of=year(2012))
    assert any(r["object"] == "Old" for r in csv.DictReader(old.open()))


def test_unknown_format_is_a_usage_error(store: SQLiteGraphStore, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="graphml, json, csv"):
        export_graph(store, "xlsx", tmp_path / "x")
