"""Schema, versioned migrations and file-format checks for the embedded SQLite store.

Column encodings (times as integer microseconds, embeddings as float32 BLOBs) are explained
in sqlite_codec.py. Foreign keys are DEFERRABLE INITIALLY DEFERRED so that, inside one
transaction, records can be written in any order (facts before their entities); they are
checked at commit.
"""

from __future__ import annotations

import sqlite3

from evergraph.errors import StoreFormatError
from evergraph.graph.ids import evidence_digest

APP = "evergraph"

_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('app', 'evergraph')",
    """CREATE TABLE sources (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        uri TEXT NOT NULL,
        published_at INTEGER,
        ingested_at INTEGER NOT NULL,
        metadata TEXT NOT NULL
    )""",
    # pk is the rowid the FTS index points at; id is the record's own key.
    """CREATE TABLE chunks (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        source_id TEXT NOT NULL
            REFERENCES sources (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        embedding BLOB
    )""",
    "CREATE INDEX chunks_source ON chunks (source_id)",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5 (
        text, content = 'chunks', content_rowid = 'pk',
        tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, text) VALUES (new.pk, new.text);
    END""",
    """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.pk, old.text);
    END""",
    """CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks
    WHEN old.text IS NOT new.text BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.pk, old.text);
        INSERT INTO chunks_fts (rowid, text) VALUES (new.pk, new.text);
    END""",
    """CREATE TABLE entities (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        aliases TEXT NOT NULL,
        summary TEXT NOT NULL,
        embedding BLOB,
        first_seen INTEGER,
        last_seen INTEGER,
        mentions INTEGER NOT NULL
    )""",
    # One row per distinct case-folded name or alias: find_entities is one index lookup.
    """CREATE TABLE entity_names (
        key TEXT NOT NULL,
        entity_id TEXT NOT NULL
            REFERENCES entities (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        PRIMARY KEY (key, entity_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX entity_names_entity ON entity_names (entity_id)",
    """CREATE TABLE facts (
        id TEXT PRIMARY KEY,
        subject_id TEXT NOT NULL REFERENCES entities (id) DEFERRABLE INITIALLY DEFERRED,
        predicate TEXT NOT NULL,
        object_id TEXT REFERENCES entities (id) DEFERRABLE INITIALLY DEFERRED,
        object_value TEXT,
        confidence REAL NOT NULL,
        support INTEGER NOT NULL,
        valid_from INTEGER,
        valid_to INTEGER,
        recorded_at INTEGER NOT NULL,
        retired_at INTEGER,
        retire_reason TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'contested')),
        last_seen INTEGER
    )""",
    "CREATE INDEX facts_subject ON facts (subject_id, predicate)",
    "CREATE INDEX facts_object ON facts (object_id)",
    """CREATE TABLE evidence (
        fact_id TEXT NOT NULL
            REFERENCES facts (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        source_id TEXT NOT NULL
            REFERENCES sources (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        chunk_id TEXT
            REFERENCES chunks (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        quote TEXT NOT NULL,
        agreement REAL NOT NULL,
        model TEXT NOT NULL,
        extracted_at INTEGER NOT NULL
    )""",
    # The same extraction added twice (a resumed batch job) updates instead of duplicating.
    """CREATE UNIQUE INDEX evidence_key
        ON evidence (fact_id, source_id, ifnull(chunk_id, ''), quote, model)""",
    "CREATE INDEX evidence_source ON evidence (source_id)",
    "CREATE INDEX evidence_chunk ON evidence (chunk_id)",
    """CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        op TEXT NOT NULL,
        kind TEXT NOT NULL,
        item_id TEXT NOT NULL,
        payload TEXT NOT NULL
    )""",
    """CREATE TRIGGER changes_no_update BEFORE UPDATE ON changes BEGIN
        SELECT RAISE (ABORT, 'the change log is append-only');
    END""",
    """CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes BEGIN
        SELECT RAISE (ABORT, 'the change log is append-only');
    END""",
)

# Document keys (versions of one document), merges kept on entities, and on evidence what
# the fact took from it and how the text named its ends.
_V2 = (
    "ALTER TABLE sources ADD COLUMN key TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX sources_key ON sources (key)",
    "ALTER TABLE entities ADD COLUMN merges TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE evidence ADD COLUMN confidence REAL",
    "ALTER TABLE evidence ADD COLUMN subject_mention TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE evidence ADD COLUMN object_mention TEXT NOT NULL DEFAULT ''",
)

# ACE playbooks: the current state of each (a row, its bullets) and its append-only history,
# each entry one JSON document (sqlite_playbooks.py).
_V3 = (
    """CREATE TABLE playbooks (
        name TEXT PRIMARY KEY,
        sections TEXT NOT NULL,
        version INTEGER NOT NULL,
        next_id INTEGER NOT NULL
    )""",
    """CREATE TABLE playbook_bullets (
        playbook TEXT NOT NULL
            REFERENCES playbooks (name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        id TEXT NOT NULL,
        section TEXT NOT NULL,
        content TEXT NOT NULL,
        helpful INTEGER NOT NULL,
        harmful INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        reflection_id TEXT,
        embedding BLOB,
        PRIMARY KEY (playbook, id)
    )""",
    """CREATE TABLE playbook_history (
        playbook TEXT NOT NULL
            REFERENCES playbooks (name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        seq INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (playbook, seq)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER playbook_history_no_update BEFORE UPDATE ON playbook_history BEGIN
        SELECT RAISE (ABORT, 'the playbook history is append-only');
    END""",
    """CREATE TRIGGER playbook_history_no_delete BEFORE DELETE ON playbook_history BEGIN
        SELECT RAISE (ABORT, 'the playbook history is append-only');
    END""",
)

# Evidence is unique by a digest of what made it the same extraction (`ids.evidence_digest`,
# registered on the connection as evidence_key) instead of by an index over those columns,
# quotes included: 330 index pages instead of 2,386 for 50,000 evidence (bench_integrate), and
# a batch's commit writes the pages its inserts dirtied.
_V4 = (
    "ALTER TABLE evidence ADD COLUMN key BLOB",
    "UPDATE evidence SET key = evidence_key(fact_id, source_id, chunk_id, quote, model)",
    "DROP INDEX evidence_key",
    "CREATE UNIQUE INDEX evidence_by_key ON evidence (key)",
)

# V4 dropped the index that began with fact_id, and with it every lookup of a fact's evidence
# became a scan of the table: 3 ms a fact at 100k evidence, 50 of them per graph walk
# (bench_retrieval: graph walk p50 174 ms), and the orphan check of a superseded document one
# scan per fact.
_V5 = ("CREATE INDEX evidence_fact ON evidence (fact_id)",)

# Step i (1-based) takes a store from schema version i-1 to i. Append, never edit: stores in
# the field were made by the old steps.
MIGRATIONS: list[tuple[str, ...]] = [_V1, _V2, _V3, _V4, _V5]


def _not_ours(location: str) -> StoreFormatError:
    return StoreFormatError(
        f"{location} is not an Evergraph store",
        fix="point EVERGRAPH_STORE at an Evergraph store or at a new file; "
        "this file was left untouched",
    )


def stored_version(conn: sqlite3.Connection, location: str) -> int:
    """The file's schema version, 0 for an empty database; refuse anything not ours.

    Reads only, so that a foreign database is never modified (not even switched to WAL).
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    if "meta" not in tables:
        raise _not_ours(location)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta["schema_version"])
    except (sqlite3.OperationalError, KeyError, ValueError, TypeError):
        raise _not_ours(location) from None
    if meta.get("app") != APP:
        raise _not_ours(location)
    supported = len(MIGRATIONS)
    if version > supported:
        raise StoreFormatError(
            f"{location} was written by a newer Evergraph (store schema {version}; "
            f"this version reads up to {supported})",
            fix="upgrade Evergraph (pip install -U evergraph)",
        )
    return version


def prepare(conn: sqlite3.Connection, location: str) -> None:
    """Check the file is ours, switch it to WAL, and apply pending migrations atomically.

    The version is read again under the write lock so that two processes opening a new file
    at once do not both migrate it.
    """
    stored_version(conn, location)
    conn.create_function("evidence_key", 5, evidence_digest, deterministic=True)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(conn, location)
        for step in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(step + 1),),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
