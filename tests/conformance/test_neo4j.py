"""The store conformance suite on Neo4j, when EVERGRAPH_TEST_NEO4J_URI names a server.

Every test starts from an EMPTY database: the fixture deletes everything in it, and the
vector indexes (whose dimension comes from each test's data). Point the variable at a
disposable database only, e.g. the compose stack's:

    docker compose up -d neo4j
    EVERGRAPH_TEST_NEO4J_URI=neo4j://neo4j:PASSWORD@127.0.0.1:7687 \\
        .venv/bin/pytest tests/conformance -k neo4j

Without the variable the module is skipped, under EVERGRAPH_REQUIRE_SERVICES=1 too: Neo4j
cannot run where CI runs (no Docker engine there), so only the LLM services are required.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from evergraph.config import Neo4jSettings
from evergraph.errors import StoreFormatError, UsageError
from evergraph.graph.models import Entity
from evergraph.graph.store import cypher
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.factory import Neo4jTarget, neo4j_target

from .store_suite import StoreConformance, entity

URI = os.environ.get("EVERGRAPH_TEST_NEO4J_URI", "")
pytestmark = [
    pytest.mark.neo4j,
    pytest.mark.skipif(
        not URI,
        reason="no Neo4j server: set EVERGRAPH_TEST_NEO4J_URI=neo4j://USER:PASSWORD@HOST:7687 "
        "to a disposable database (e.g. the compose stack's: docker compose up -d neo4j)",
    ),
]

neo4j = pytest.importorskip("neo4j", reason="the neo4j driver is not installed")
from evergraph.graph.store.neo4j import Neo4jGraphStore, check_neo4j  # noqa: E402


def target() -> Neo4jTarget:
    return neo4j_target(URI, Neo4jSettings())


def run(*statements: cypher.Statement) -> None:
    t = target()
    with neo4j.GraphDatabase.driver(t.uri, auth=(t.user, t.password)) as driver:
        for s in statements:
            driver.execute_query(s.text, s.params, database_=t.database)


def open_store() -> Neo4jGraphStore:
    t = target()
    return Neo4jGraphStore(t.uri, t.user, t.password, t.database)


@pytest.fixture
def neo4j_store() -> Iterator[Neo4jGraphStore]:
    run(*cypher.wipe())
    with open_store() as store:
        yield store


class TestNeo4jStore(StoreConformance):
    @pytest.fixture
    def store(self, neo4j_store: Neo4jGraphStore) -> GraphStore:
        return neo4j_store


# -- what only the Neo4j backend has ---------------------------------------------------------


def test_doctor_check_reports_a_healthy_store(neo4j_store: Neo4jGraphStore) -> None:
    neo4j_store.upsert_entities([entity("a", embedding=[1.0, 0.0])])
    detail = check_neo4j(neo4j_store)
    assert "indexes online" in detail and "entity 2d" in detail


def test_wrong_password_is_a_usage_error(neo4j_store: Neo4jGraphStore) -> None:
    t = target()
    with pytest.raises(UsageError, match="refused the user name or password"):
        Neo4jGraphStore(t.uri, t.user, t.password + "-wrong", t.database)


def test_a_database_with_other_data_is_refused_untouched() -> None:
    run(*cypher.wipe(), cypher.Statement("CREATE (:Customer {name: 'Ada'})"))
    try:
        with pytest.raises(StoreFormatError, match="not Evergraph's"):
            open_store()
    finally:
        run(*cypher.wipe())


def test_one_embedding_dimension_per_kind(neo4j_store: Neo4jGraphStore) -> None:
    neo4j_store.upsert_entities([entity("a", embedding=[1.0, 0.0, 0.0])])
    with pytest.raises(UsageError, match="one dimension per kind"):
        neo4j_store.upsert_entities([entity("b", embedding=[1.0, 0.0])])
    with pytest.raises(UsageError, match="dimensions"):
        neo4j_store.search_entities_vector([1.0, 0.0])
    assert neo4j_store.get_entity("b") is None


def test_concurrent_writers_get_distinct_sequence_numbers(neo4j_store: Neo4jGraphStore) -> None:
    def write(prefix: str) -> None:
        with open_store() as store:
            for i in range(10):
                store.upsert_entities([Entity(id=f"{prefix}{i}", name=f"{prefix} {i}")])

    threads = [threading.Thread(target=write, args=(p,)) for p in "xyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [c.seq for c in neo4j_store.changes(limit=100)]
    assert len(seqs) == len(set(seqs)) == 30
    assert neo4j_store.stats().entities == 30
