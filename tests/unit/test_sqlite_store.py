"""Behaviour only the SQLite backend has: its file format, migrations, failures; and the
factory that picks a backend from EVERGRAPH_STORE."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from evergraph.config import Neo4jSettings
from evergraph.errors import StoreError, StoreFormatError, UsageError
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, Source
from evergraph.graph.store import sqlite_schema
from evergraph.graph.store.factory import Neo4jTarget, neo4j_target, open_store
from evergraph.graph.store.sqlite import SQLiteGraphStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(path) as store:
        yield store


def entities(n: int, prefix: str = "e") -> list[Entity]:
    return [Entity(id=f"{prefix}{i}", name=f"{prefix} {i}", summary="x" * 200) for i in range(n)]


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def old_store(path: Path, monkeypatch: pytest.MonkeyPatch, version: int, rows: str) -> None:
    """A store file at schema `version` (the first migrations only) holding `rows` (SQL)."""
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:version])
    conn = raw(path)
    sqlite_schema.prepare(conn, str(path))
    conn.executescript(rows)
    conn.close()
    monkeypatch.undo()


# -- file format ------------------------------------------------------------------------------


def test_new_store_in_missing_folder_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    with SQLiteGraphStore(path) as store:
        assert store.location == str(path)
        assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
        pragmas = {
            p: store._conn.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("journal_mode", "synchronous", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1}


def test_empty_file_is_initialised(path: Path) -> None:
    path.touch()
    with SQLiteGraphStore(path) as store:
        assert store.stats().entities == 0


def test_data_survives_reopening(path: Path) -> None:
    with SQLiteGraphStore(path) as store:
        store.upsert_entities(entities(3))
    with SQLiteGraphStore(path) as store:
        assert store.get_entity("e2") == entities(3)[2]
        assert store.stats().changes == 3


def test_a_file_that_is_not_sqlite_is_refused_untouched(path: Path) -> None:
    content = b"just some notes, definitely not a database\n" * 100
    path.write_bytes(content)
    with pytest.raises(StoreFormatError, match="is not an Evergraph store") as info:
        SQLiteGraphStore(path)
    assert info.value.fix and "EVERGRAPH_STORE" in info.value.fix
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "ddl",
    [
        ["CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"],
        ["CREATE TABLE meta (k, v)"],  # a meta table, but not ours
        [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
            "INSERT INTO meta VALUES ('app', 'other'), ('schema_version', '1')",
        ],
    ],
)
def test_another_apps_sqlite_database_is_refused_untouched(path: Path, ddl: list[str]) -> None:
    with raw(path) as conn:
        for statement in ddl:
            conn.execute(statement)
    conn.close()
    content = path.read_bytes()
    with pytest.raises(StoreFormatError, match="is not an Evergraph store"):
        SQLiteGraphStore(path)
    assert path.read_bytes() == content  # not even switched to WAL


def test_a_newer_schema_asks_for_an_upgrade(path: Path) -> None:
    SQLiteGraphStore(path).close()
    conn = raw(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreFormatError, match="newer Evergraph") as info:
        SQLiteGraphStore(path)
    assert info.value.fix and "upgrade Evergraph" in info.value.fix


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        SQLiteGraphStore(tmp_path)


def test_migrations_run_once_in_order_and_reopening_is_idempotent(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteGraphStore(path) as store:
        store.upsert_entities(entities(2))
    for _ in range(2):
        SQLiteGraphStore(path).close()
    conn = raw(path)
    assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 2

    step = ("CREATE TABLE later (x)", "INSERT INTO later VALUES (1)")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", [*sqlite_schema.MIGRATIONS, step])
    for _ in range(2):
        with SQLiteGraphStore(path) as store:
            assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
            assert store.stats().entities == 2
    assert conn.execute("SELECT count(*) FROM later").fetchone()[0] == 1  # applied once
    conn.close()


def test_a_failing_migration_leaves_the_store_as_it_was(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SQLiteGraphStore(path).close()
    broken = ("CREATE TABLE later (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", [*sqlite_schema.MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError):
        SQLiteGraphStore(path)
    monkeypatch.undo()
    with SQLiteGraphStore(path) as store:
        assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
        assert (
            store._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'later'"
            ).fetchone()[0]
            == 0
        )


def test_a_version_1_store_is_upgraded_with_its_records_intact(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_store(
        path,
        monkeypatch,
        1,
        "INSERT INTO sources VALUES ('s', 'T', 'text', '', NULL, 0, '{}');"
        "INSERT INTO entities VALUES ('e', 'E', 'Thing', '[]', '', NULL, NULL, NULL, 0);"
        "INSERT INTO facts VALUES ('f', 'e', 'p', NULL, 'v', 0.5, 1, NULL, NULL, 0, NULL, '', "
        "'active', NULL);"
        "INSERT INTO evidence VALUES ('f', 's', NULL, 'q', 0.5, 'm', 0);",
    )
    with SQLiteGraphStore(path) as store:
        assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
        source, entity = store.get_source("s"), store.get_entity("e")
        assert source is not None and source.key == ""
        assert entity is not None and entity.merges == []
        (ev,) = store.evidence_for("f")
        assert (ev.confidence, ev.subject_mention, ev.object_mention) == (None, "", "")
        store.upsert_sources([Source(id="s2", key="doc", text="v2")])
        assert [s.id for s in store.find_sources("doc")] == ["s2"]


def test_a_version_3_store_gains_evidence_keys_that_find_its_evidence(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_store(
        path,
        monkeypatch,
        3,
        "INSERT INTO sources VALUES ('s', 'T', 'text', '', NULL, 0, '{}', '');"
        "INSERT INTO chunks VALUES (1, 'c', 's', 0, 'text', NULL);"
        "INSERT INTO entities VALUES ('e', 'E', 'Thing', '[]', '', NULL, NULL, NULL, 0, '[]');"
        "INSERT INTO facts VALUES ('f', 'e', 'p', NULL, 'v', 0.5, 1, NULL, NULL, 0, NULL, '', "
        "'active', NULL);"
        "INSERT INTO evidence VALUES ('f', 's', NULL, 'q', 0.5, 'm', 0, NULL, '', '');"
        "INSERT INTO evidence VALUES ('f', 's', 'c', 'q', 0.6, 'm', 0, NULL, '', '');"
        "INSERT INTO evidence VALUES ('f', 's', NULL, 'other quote', 0.7, 'm', 0, NULL, '', '');",
    )
    with SQLiteGraphStore(path) as store:
        assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
        indexes = {
            r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert "evidence_by_key" in indexes and "evidence_key" not in indexes
        # the same extraction again refreshes the old row; a removal finds it by its key
        again = Evidence(
            fact_id="f", source_id="s", chunk_id="c", quote="q", agreement=0.9, model="m"
        )
        store.add_evidence([again])
        assert sorted(e.agreement for e in store.evidence_for("f")) == [0.5, 0.7, 0.9]
        gone = Evidence(fact_id="f", source_id="s", quote="other quote", model="m")
        assert store.remove_evidence([gone]) == 1
        assert [(e.chunk_id, e.quote) for e in store.evidence_for("f")] == [(None, "q"), ("c", "q")]


def test_a_facts_evidence_is_read_through_an_index(store: SQLiteGraphStore) -> None:
    """Not a scan of the evidence table: a graph walk reads the evidence of 50 facts."""
    store.upsert_sources([Source(id="s", text="t")])
    store.upsert_entities(entities(1))
    store.upsert_facts([Fact(id="f", subject_id="e0", predicate="p", value="v", confidence=0.5)])
    store.add_evidence([Evidence(fact_id="f", source_id="s", quote="q", model="m")])
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    assert len(store.evidence_for("f")) == 1
    store._conn.set_trace_callback(None)
    (select,) = [s for s in statements if s.lstrip().startswith("SELECT")]
    plan = " ".join(r[3] for r in store._conn.execute(f"EXPLAIN QUERY PLAN {select}"))
    assert "USING INDEX evidence_fact" in plan, plan


# -- failures at run time -----------------------------------------------------------------------


def test_disk_full_is_a_clear_error_and_keeps_committed_data(store: SQLiteGraphStore) -> None:
    store.upsert_entities(entities(100, "kept"))
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's SQLITE_FULL
    with pytest.raises(StoreError, match=r"disk .* is full") as info:
        store.upsert_entities(entities(5000, "lost"))
    assert info.value.fix and "free disk space" in info.value.fix
    assert "nothing committed" in info.value.message
    assert store.stats().entities == 100
    assert store.get_entity("kept99") is not None
    assert store.find_entities("lost 1") == []

    store._conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: writes work again
    store.upsert_entities(entities(50, "later"))
    assert store.stats().entities == 150
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_writes_after_disk_full_inside_a_transaction_are_refused(store: SQLiteGraphStore) -> None:
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StoreError, match="rolled back"), store.transaction():
        store.upsert_entities(entities(1, "early"))
        with pytest.raises(StoreError, match="full"):
            store.upsert_entities(entities(5000, "lost"))
        store._conn.execute("PRAGMA max_page_count = 1073741823")
        with pytest.raises(StoreError, match="already failed"):
            store.upsert_entities(entities(1, "late"))  # would commit on its own otherwise
    assert store.stats().entities == 0
    assert store.stats().changes == 0


def test_a_locked_store_names_the_other_process(path: Path) -> None:
    store = SQLiteGraphStore(path, timeout=0.05)
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="another process"):
            store.upsert_entities(entities(1))
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.upsert_entities(entities(1))  # usable once the other writer is gone
    store.close()


def test_the_change_log_refuses_edits(store: SQLiteGraphStore) -> None:
    store.upsert_entities(entities(1))
    for statement in ("UPDATE changes SET op = 'x'", "DELETE FROM changes"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._conn.execute(statement)


def test_adding_the_same_evidence_twice_updates_it(store: SQLiteGraphStore) -> None:
    store.upsert_sources([Source(id="s", text="t")])
    store.upsert_entities(entities(1))
    store.upsert_facts([Fact(id="f", subject_id="e0", predicate="p", confidence=0.5)])
    store.add_evidence([Evidence(fact_id="f", source_id="s", quote="q", agreement=0.5)])
    store.add_evidence([Evidence(fact_id="f", source_id="s", quote="q", agreement=0.9)])
    assert [e.agreement for e in store.evidence_for("f")] == [0.9]


def test_a_second_connection_sees_writes_and_fresh_vectors(path: Path) -> None:
    with SQLiteGraphStore(path) as writer, SQLiteGraphStore(path) as reader:
        writer.upsert_sources([Source(id="s", text="t")])
        chunk = Chunk(id="c1", source_id="s", ordinal=0, text="a", embedding=[1.0, 0.0])
        writer.upsert_chunks([chunk])
        assert [c.id for c, _ in reader.search_chunks_vector([1.0, 0.0])] == ["c1"]
        writer.upsert_chunks([chunk.model_copy(update={"id": "c2", "embedding": [0.0, 1.0]})])
        assert reader.search_chunks_vector([0.0, 1.0])[0][0].id == "c2"


def test_vector_dimension_mismatch_is_a_usage_error(store: SQLiteGraphStore) -> None:
    store.upsert_entities([Entity(id="e", name="e", embedding=[1.0, 0.0, 0.0])])
    with pytest.raises(UsageError, match="dimensions"):
        store.search_entities_vector([1.0, 0.0])


def test_threads_can_share_a_store(store: SQLiteGraphStore) -> None:
    def write(prefix: str) -> None:
        for i in range(20):
            with store.transaction():
                store.upsert_entities(entities(5, f"{prefix}-{i}-"))

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.stats().entities == 4 * 20 * 5


# -- factory ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("{tmp}/plain.db", "{tmp}/plain.db"),
        ("sqlite:{tmp}/a.db", "{tmp}/a.db"),
        ("sqlite://{tmp}/b.db", "{tmp}/b.db"),  # sqlite:// + /abs/path, as in file URLs
        ("SQLite:{tmp}/c.db", "{tmp}/c.db"),
        ("  {tmp}/d.db  ", "{tmp}/d.db"),
    ],
)
def test_open_store_accepts_paths_and_sqlite_urls(
    tmp_path: Path, location: str, expected: str
) -> None:
    store = open_store(location.format(tmp=tmp_path))
    assert isinstance(store, SQLiteGraphStore)
    assert store.location == expected.format(tmp=tmp_path)
    store.close()


def test_open_store_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:data/rel.db").close()
    assert (tmp_path / "data" / "rel.db").is_file()


@pytest.mark.parametrize(
    ("location", "uri", "user", "password", "database"),
    [
        ("neo4j://localhost", "neo4j://localhost:7687", "neo4j", "from-settings", None),
        ("bolt://db:7688/", "bolt://db:7688", "neo4j", "from-settings", None),
        ("neo4j://u:p@db:7687", "neo4j://db:7687", "u", "p", None),
        (
            "NEO4J+S://u@x.databases.neo4j.io",
            "neo4j+s://x.databases.neo4j.io:7687",
            "u",
            "from-settings",
            None,
        ),
        ("neo4j://u:p%40ss%2Fw:rd@db:7687/graph", "neo4j://db:7687", "u", "p@ss/w:rd", "graph"),
        ("neo4j://u:@db", "neo4j://db:7687", "u", "", None),  # an empty password, on purpose
        ("bolt+ssc://[::1]:7687", "bolt+ssc://[::1]:7687", "neo4j", "from-settings", None),
        ("neo4j://db:7687?policy=eu", "neo4j://db:7687?policy=eu", "neo4j", "from-settings", None),
    ],
)
def test_neo4j_locations_give_uri_credentials_and_database(
    location: str, uri: str, user: str, password: str, database: str | None
) -> None:
    target = neo4j_target(location, Neo4jSettings(password=SecretStr("from-settings")))
    assert target == Neo4jTarget(uri, user, password, database)
    assert "password" not in repr(target)  # never printed


@pytest.mark.parametrize("location", ["neo4j://", "bolt://db:port", "neo4j://u:secret@db/a/b"])
def test_bad_neo4j_locations_are_usage_errors(location: str) -> None:
    with pytest.raises(UsageError) as info:
        neo4j_target(location, Neo4jSettings())
    assert "secret" not in str(info.value)
    assert info.value.fix and "neo4j://" in info.value.fix


def test_open_store_neo4j_unreachable_names_the_server_not_the_password() -> None:
    pytest.importorskip("neo4j", reason="the neo4j driver is not installed (evergraph[neo4j])")
    with pytest.raises(StoreError, match=r"cannot reach Neo4j at bolt://127\.0\.0\.1:1") as info:
        open_store("bolt://neo4j:s3cret@127.0.0.1:1")  # nothing listens on port 1
    assert "s3cret" not in str(info.value)
    assert info.value.fix and "docker compose up -d neo4j" in info.value.fix


def test_open_store_neo4j_without_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "neo4j", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "evergraph.graph.store.neo4j", raising=False)
    with pytest.raises(UsageError, match="neo4j driver") as info:
        open_store("neo4j://db:7687")
    assert info.value.fix == "pip install 'evergraph[neo4j]'"


@pytest.mark.parametrize(
    "location", ["postgres://db/x", "http://example.com/store", "sqlite://host/x.db", "", "sqlite:"]
)
def test_open_store_rejects_other_locations(location: str) -> None:
    with pytest.raises(UsageError) as info:
        open_store(location)
    assert info.value.fix and "sqlite:PATH" in info.value.fix


# -- background checkpoints ---------------------------------------------------------------------


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("checkpoint ")]


def test_a_large_log_is_checkpointed_by_a_thread_not_by_the_commit(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evergraph.graph.store import sqlite

    monkeypatch.setattr(sqlite, "CHECKPOINT_PAGES", 64)  # 256 KB of log
    monkeypatch.setattr(sqlite, "BACKSTOP", 10_000)  # SQLite's own never fires here
    with SQLiteGraphStore(path) as store:
        store.upsert_entities(entities(3))
        assert checkpoint_threads() == []  # a small log: no thread
        before = path.stat().st_size
        store.upsert_entities(entities(4000, "big"))  # ~2 MB of log
        (thread,) = checkpoint_threads()
        for _ in range(500):  # the copy lands in the database file, not in the commit
            if path.stat().st_size > before + 1_000_000:
                break
            threading.Event().wait(0.01)
        assert path.stat().st_size > before + 1_000_000
        assert store.get_entity("big3999") is not None
    assert not thread.is_alive()  # closing the store stops it
    with SQLiteGraphStore(path) as store:
        assert store.stats().entities == 4003
