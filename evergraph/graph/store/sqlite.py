"""The embedded graph store: one SQLite file, stdlib sqlite3, no server.

WAL with synchronous=NORMAL: a commit is durable once COMMIT returns as far as the process
is concerned (kill -9 loses nothing committed; only a power cut may lose the last
transactions, never corrupting the file). Writes take the write lock up front
(BEGIN IMMEDIATE) so that two writers wait on each other instead of deadlocking.

Change-log vocabulary (`changes()`): op is "upsert", "add" or "remove" (evidence), "retire" or
"delete";
kind is "source", "chunk", "entity", "fact" or "evidence". Upserts log no payload, to keep
bulk writes fast: the record itself is the current state.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from evergraph.errors import EvergraphError, StoreError, StoreFormatError, UsageError
from evergraph.graph.ids import evidence_digest_of
from evergraph.graph.models import (
    Change,
    Chunk,
    Entity,
    Evidence,
    Fact,
    FactStatus,
    Source,
    StoreStats,
    utcnow,
)
from evergraph.graph.store import sqlite_playbooks, sqlite_schema
from evergraph.graph.store.base import Record
from evergraph.graph.store.shared import (
    Nesting,
    check_history,
    evidence_payload,
    from_us,
    name_key,
    retire_payload,
    status_value,
    to_json,
    to_us,
    walk,
)
from evergraph.graph.store.sqlite_checkpoint import BACKSTOP, Checkpointer
from evergraph.graph.store.sqlite_codec import (
    ADD_EVIDENCE,
    CHUNKS,
    ENTITIES,
    EVIDENCE,
    FACTS,
    LOG,
    REMOVE_EVIDENCE,
    SOURCES,
    UPSERT_CHUNK,
    UPSERT_ENTITY,
    UPSERT_FACT,
    UPSERT_SOURCE,
    Codec,
    M,
    chunk_hit_columns,
    evidence_row,
    fts_query,
    holds_sql,
)
from evergraph.graph.store.sqlite_vectors import VectorIndex
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Playbook

_FACT_ENDS = itemgetter(0, FACTS.columns.index("subject_id"), FACTS.columns.index("object_id"))
_SCANNED: dict[type[BaseModel], Codec[Any]] = {
    Source: SOURCES,
    Chunk: CHUNKS,
    Entity: ENTITIES,
    Fact: FACTS,
    Evidence: EVIDENCE,
}


def _translate(error: sqlite3.Error, location: str) -> EvergraphError | None:
    """A user-facing error for the failures users can act on; None for bugs (keep traceback)."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # primary code of an extended one
    if code == sqlite3.SQLITE_FULL:
        return StoreError(
            f"the disk holding {location} is full; the last write was rolled back "
            "(nothing committed before it was lost)",
            fix="free disk space (or move EVERGRAPH_STORE to a larger disk) and retry",
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(
            f"{location} is locked: another process (or another open store) is writing to it",
            fix="wait for the other Evergraph process to finish, or stop it, and retry",
        )
    if code == sqlite3.SQLITE_NOTADB:
        return StoreFormatError(
            f"{location} is not an Evergraph store",
            fix="point EVERGRAPH_STORE at an Evergraph store or at a new file",
        )
    if code == sqlite3.SQLITE_CORRUPT:
        return StoreError(
            f"{location} is corrupt ({error})",
            fix="restore the store from a backup, or rebuild it by re-ingesting the sources",
        )
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR):
        return StoreError(
            f"cannot write {location} ({error})",
            fix="check that the path is a writable file on a local disk",
        )
    if code == sqlite3.SQLITE_CONSTRAINT:
        return UsageError(
            f"rejected by the store: {error}",
            fix="write every record a record refers to (source, entity, fact, chunk) "
            "before or in the same transaction",
        )
    return None


CHECKPOINT_PAGES = 10_000


class SQLiteGraphStore:
    """`GraphStore` on one SQLite file; safe to share between threads (writes serialise)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        file = Path(path).expanduser()
        self.location = str(file)
        self._lock = threading.RLock()
        self._nesting = Nesting()
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"cannot create the folder for {file}: {e.strerror}",
                fix="choose a store path in a writable folder",
            ) from e
        if file.is_dir():
            raise UsageError(f"{file} is a folder", fix="give the store a file path")
        # timeout is SQLite's busy timeout; isolation_level=None: we issue BEGIN/COMMIT.
        self._conn = sqlite3.connect(
            file, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            with self._sql_errors():
                self._conn.execute("PRAGMA foreign_keys = ON")
                sqlite_schema.prepare(self._conn, self.location)
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA cache_size = -65536")
                # Checkpoint every 10,000 pages (40 MB of WAL) instead of 1,000: integrating
                # document by document rewrites the same index pages again and again, and each
                # checkpoint flushes them with an fsync; measured 1.4x faster over 2,000
                # documents on local disk (benchmarks/bench_integrate.py). On a thread of its
                # own (sqlite_checkpoint.py), SQLite's autocheckpoint only a backstop.
                self._conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES * BACKSTOP}")
        except BaseException:
            self._conn.close()
            raise
        self._checkpoints = Checkpointer(self.location, pages=CHECKPOINT_PAGES)
        self._chunk_vectors = VectorIndex(self._conn, "chunks")
        self._entity_vectors = VectorIndex(self._conn, "entities", "type")

    def __enter__(self) -> SQLiteGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._checkpoints.close()
            self._conn.close()

    # -- transactions and errors ---------------------------------------------------------

    @contextmanager
    def _sql_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            mapped = _translate(e, self.location)
            if mapped is None:
                raise
            raise mapped from e

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested blocks join the outer transaction (see `Nesting`)."""
        with self._lock:
            if self._nesting.depth:
                # SQLite may have rolled back already (disk full): writes would commit alone
                with self._nesting.join():
                    yield
                return
            with self._sql_errors():
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                with self._nesting.outer():
                    yield
                with self._sql_errors():
                    self._conn.execute("COMMIT")
                self._checkpoints.committed()
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        self._chunk_vectors.invalidate()
        self._entity_vectors.invalidate()
        if self._conn.in_transaction:  # SQLite may already have rolled back (disk full)
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self.transaction(), self._sql_errors():
            yield

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock, self._sql_errors():
            yield

    def _log(self, op: str, kind: str, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        at = to_us(utcnow())
        self._conn.executemany(
            LOG, ((at, op, kind, item_id, to_json(payload)) for item_id, payload in items)
        )

    def _log_upserts(self, kind: str, ids: Iterable[str]) -> None:
        """One statement over a JSON array: five times faster than executemany at 100k rows."""
        self._conn.execute(
            "INSERT INTO changes (at, op, kind, item_id, payload) "
            "SELECT ?, 'upsert', ?, value, '{}' FROM json_each(?)",
            (to_us(utcnow()), kind, json.dumps(list(ids))),
        )

    # -- writes ---------------------------------------------------------------------------

    def upsert_sources(self, sources: Sequence[Source]) -> None:
        with self._writing():
            self._conn.executemany(UPSERT_SOURCE, map(SOURCES.row, sources))
            self._log_upserts("source", (s.id for s in sources))

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None:
        with self._writing():
            self._conn.executemany(UPSERT_CHUNK, map(CHUNKS.row, chunks))
            self._chunk_vectors.update([c.id for c in chunks])
            self._log_upserts("chunk", (c.id for c in chunks))

    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        # Last one wins within a batch, else the name rows of both versions would be kept.
        latest = list({e.id: e for e in entities}.values())
        with self._writing():
            self._conn.executemany(UPSERT_ENTITY, map(ENTITIES.row, latest))
            ids = [e.id for e in latest]
            self._entity_vectors.update(ids)
            names = [
                (key, e.id)
                for e in latest
                for key in dict.fromkeys(map(name_key, [e.name, *e.aliases]))
                if key
            ]
            # Only the names that changed are written: most upserts keep every name.
            self._conn.execute(
                "DELETE FROM entity_names WHERE entity_id IN (SELECT value FROM json_each(?)) "
                "AND (key, entity_id) NOT IN (SELECT json_extract(value, '$[0]'), "
                "json_extract(value, '$[1]') FROM json_each(?))",
                (json.dumps(ids), json.dumps(names)),
            )
            self._conn.executemany(
                "INSERT OR IGNORE INTO entity_names (key, entity_id) VALUES (?, ?)", names
            )
            self._log_upserts("entity", ids)

    def upsert_facts(self, facts: Sequence[Fact]) -> None:
        with self._writing():
            self._conn.executemany(UPSERT_FACT, map(FACTS.row, facts))
            self._log_upserts("fact", (f.id for f in facts))

    def add_evidence(self, evidence: Sequence[Evidence]) -> None:
        with self._writing():
            self._conn.executemany(ADD_EVIDENCE, map(evidence_row, evidence))
            # `evidence_payload` built by SQLite in one statement, as in `_log_upserts`
            self._conn.execute(
                "INSERT INTO changes (at, op, kind, item_id, payload) "
                "SELECT ?, 'add', 'evidence', json_extract(value, '$[0]'), "
                "json_object('source_id', json_extract(value, '$[1]'), "
                "'chunk_id', json_extract(value, '$[2]')) FROM json_each(?)",
                (
                    to_us(utcnow()),
                    json.dumps([[e.fact_id, e.source_id, e.chunk_id] for e in evidence]),
                ),
            )

    def retire_fact(
        self,
        fact_id: str,
        *,
        at: datetime,
        reason: str,
        status: FactStatus = FactStatus.SUPERSEDED,
        valid_to: datetime | None = None,
    ) -> None:
        with self._writing():
            found = self._conn.execute(
                "UPDATE facts SET retired_at = ?, retire_reason = ?, status = ?, "
                "valid_to = coalesce(?, valid_to) WHERE id = ?",
                (to_us(at), reason, status_value(status), to_us(valid_to), fact_id),
            ).rowcount
            if not found:
                raise UsageError(f"no fact with id {fact_id!r}", fix="retire an existing fact")
            payload = retire_payload(reason, status, at, valid_to)
            self._log("retire", "fact", [(fact_id, payload)])

    def remove_evidence(self, evidence: Sequence[Evidence]) -> int:
        with self._writing():
            removed = [
                e
                for e in evidence
                if self._conn.execute(REMOVE_EVIDENCE, (evidence_digest_of(e),)).rowcount
            ]
            self._log("remove", "evidence", ((e.fact_id, evidence_payload(e)) for e in removed))
        return len(removed)

    def delete_source(self, source_id: str) -> int:
        with self._writing():
            counts = self._conn.execute(
                "SELECT (SELECT count(*) FROM sources WHERE id = :s), "
                "(SELECT count(*) FROM chunks WHERE source_id = :s)",
                {"s": source_id},
            ).fetchone()
            if not counts[0]:
                return 0
            # Evidence leaves with the source and with the source's chunks (cascades).
            candidates = [
                r[0]
                for r in self._conn.execute(
                    "SELECT DISTINCT fact_id FROM evidence WHERE source_id = :s "
                    "OR chunk_id IN (SELECT id FROM chunks WHERE source_id = :s)",
                    {"s": source_id},
                )
            ]
            self._chunk_vectors.invalidate()
            self._conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
            deleted = [
                r[0]
                for r in self._conn.execute(
                    "DELETE FROM facts WHERE id IN (SELECT value FROM json_each(?)) "
                    "AND NOT EXISTS (SELECT 1 FROM evidence WHERE evidence.fact_id = facts.id) "
                    "RETURNING id",
                    (json.dumps(candidates),),
                ).fetchall()
            ]
            self._log(
                "delete", "source", [(source_id, {"chunks": counts[1], "facts": len(deleted)})]
            )
            self._log("delete", "fact", ((f, {"source_id": source_id}) for f in deleted))
            return len(deleted)

    # -- reads ------------------------------------------------------------------------------

    def _one(self, codec: Codec[M], item_id: str) -> M | None:
        with self._reading():
            row = self._conn.execute(
                f"SELECT {codec.select} FROM {codec.table} WHERE id = ?", (item_id,)
            ).fetchone()
        return None if row is None else codec.record(row)

    def get_source(self, source_id: str) -> Source | None:
        return self._one(SOURCES, source_id)

    def get_entity(self, entity_id: str) -> Entity | None:
        return self._one(ENTITIES, entity_id)

    def get_fact(self, fact_id: str) -> Fact | None:
        return self._one(FACTS, fact_id)

    def _many(self, codec: Codec[M], ids: Sequence[str]) -> list[M]:
        wanted = list(dict.fromkeys(ids))
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {codec.select} FROM {codec.table} "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        found = {r[0]: r for r in rows}  # id is every codec's first column
        return [codec.record(found[i]) for i in wanted if i in found]

    def get_entities(self, entity_ids: Sequence[str]) -> list[Entity]:
        return self._many(ENTITIES, entity_ids)

    def get_facts(self, fact_ids: Sequence[str]) -> list[Fact]:
        return self._many(FACTS, fact_ids)

    def chunks_of(self, source_ids: Sequence[str]) -> list[Chunk]:
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {chunk_hit_columns('c')} FROM chunks AS c "
                "WHERE c.source_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY c.source_id, c.ordinal",
                (json.dumps(list(dict.fromkeys(source_ids))),),
            ).fetchall()
        return [CHUNKS.record(r) for r in rows]

    def find_sources(self, key: str) -> list[Source]:
        if not key:
            return []
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {SOURCES.select} FROM sources WHERE key = ? ORDER BY ingested_at, rowid",
                (key,),
            ).fetchall()
        return [SOURCES.record(r) for r in rows]

    def find_entities(self, name: str, *, type: str | None = None, limit: int = 10) -> list[Entity]:
        """Most mentioned first."""
        cols = ", ".join(f"e.{c}" for c in ENTITIES.columns)
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {cols} FROM entity_names n JOIN entities e ON e.id = n.entity_id "
                "WHERE n.key = :key AND (:type IS NULL OR e.type = :type) "
                "ORDER BY e.mentions DESC, e.id LIMIT :limit",
                {"key": name_key(name), "type": type, "limit": limit},
            ).fetchall()
        return [ENTITIES.record(r) for r in rows]

    def facts_about(
        self,
        entity_id: str,
        *,
        predicate: str | None = None,
        as_of: datetime | None = None,
        recorded_at: datetime | None = None,
        history: bool = False,
    ) -> list[Fact]:
        check_history(history, as_of, recorded_at)
        holds, params = ("1", {}) if history else holds_sql(as_of, recorded_at)
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {FACTS.select} FROM facts "
                "WHERE (subject_id = :e OR object_id = :e) "
                f"AND (:p IS NULL OR predicate = :p) AND {holds} ORDER BY recorded_at, id",
                {**params, "e": entity_id, "p": predicate},
            ).fetchall()
        return [FACTS.record(r) for r in rows]

    def facts_by_subject(self, pairs: Sequence[tuple[str, str]]) -> list[Fact]:
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {FACTS.select} FROM facts WHERE (subject_id, predicate) IN "
                "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                "FROM json_each(?)) ORDER BY rowid",
                (json.dumps([list(p) for p in pairs]),),
            ).fetchall()
        return [FACTS.record(r) for r in rows]

    def _evidence(self, column: str, value: str) -> list[Evidence]:
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {EVIDENCE.select} FROM evidence WHERE {column} = ? "
                "ORDER BY extracted_at, rowid",
                (value,),
            ).fetchall()
        return [EVIDENCE.record(r) for r in rows]

    def evidence_for(self, fact_id: str) -> list[Evidence]:
        return self._evidence("fact_id", fact_id)

    def evidence_from(self, source_id: str) -> list[Evidence]:
        return self._evidence("source_id", source_id)

    def neighbourhood(
        self, entity_ids: Sequence[str], *, hops: int = 2, as_of: datetime | None = None
    ) -> list[Fact]:
        """Breadth-first over indexed subject/object lookups, one query per hop; only facts
        that hold as of `as_of` are walked (the graph as it was then)."""
        holds, params = holds_sql(as_of, None)
        sql = (
            f"SELECT {FACTS.select} FROM facts "
            "WHERE (subject_id IN (SELECT value FROM json_each(:ids)) "
            "OR object_id IN (SELECT value FROM json_each(:ids))) "
            f"AND {holds}"
        )

        def fetch(frontier: list[str]) -> Iterable[Sequence[Any]]:
            return self._conn.execute(sql, {**params, "ids": json.dumps(frontier)})

        with self._reading():
            found = walk(entity_ids, hops, fetch, _FACT_ENDS)
        return [FACTS.record(r) for r in found]

    def _by_rowid(
        self, codec: Codec[M], rowids: Sequence[int], select: str | None = None
    ) -> dict[int, M]:
        rows = self._conn.execute(
            f"SELECT t.rowid, {select or codec.select} FROM {codec.table} AS t "
            "WHERE t.rowid IN (SELECT value FROM json_each(?))",
            (json.dumps(list(rowids)),),
        )
        return {r[0]: codec.record(r[1:]) for r in rows}

    def _vector_search(
        self,
        index: VectorIndex,
        codec: Codec[M],
        vector: Sequence[float],
        k: int,
        label: str | None,
        select: str | None = None,
    ) -> list[tuple[M, float]]:
        with self._reading():
            hits = index.search(vector, k, label=label)
            records = self._by_rowid(codec, [rowid for rowid, _ in hits], select)
        # a row deleted by another process since the index was loaded is skipped
        return [(records[rowid], score) for rowid, score in hits if rowid in records]

    def search_chunks_text(self, query: str, *, k: int = 10) -> list[tuple[Chunk, float]]:
        match = fts_query(query)
        if not match or k <= 0:
            return []
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {chunk_hit_columns('c')}, -bm25(chunks_fts) FROM chunks_fts "
                "JOIN chunks c ON c.pk = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, k),
            ).fetchall()
        return [(CHUNKS.record(r[:-1]), float(r[-1])) for r in rows]

    def search_chunks_vector(
        self, vector: Sequence[float], *, k: int = 10
    ) -> list[tuple[Chunk, float]]:
        hit = chunk_hit_columns("t")
        return self._vector_search(self._chunk_vectors, CHUNKS, vector, k, None, hit)

    def search_entities_vector(
        self, vector: Sequence[float], *, k: int = 10, type: str | None = None
    ) -> list[tuple[Entity, float]]:
        return self._vector_search(self._entity_vectors, ENTITIES, vector, k, type)

    def search_entities_vectors(
        self,
        vectors: Sequence[Sequence[float]],
        *,
        types: Sequence[str | None],
        k: int = 10,
        min_score: float = -1.0,
    ) -> list[list[tuple[Entity, float]]]:
        """`search_entities_vector` for many vectors at once (entity resolution of a batch):
        one matrix product per type, and only hits scoring `min_score` or more are read."""
        with self._reading():
            found = self._entity_vectors.search_many(
                np.asarray(vectors, dtype=np.float32), k, labels=types, min_score=min_score
            )
            records = self._by_rowid(ENTITIES, [rowid for hits in found for rowid, _ in hits])
        return [[(records[r], s) for r, s in hits if r in records] for hits in found]

    def scan(
        self, kind: type[Record], *, after: str = "", limit: int = 1000
    ) -> tuple[list[Record], str]:
        """Pages in insertion order; the cursor is the last rowid."""
        codec = _SCANNED[kind]
        try:
            start = int(after or 0)
        except ValueError:
            raise UsageError(
                f"{after!r} is not a scan cursor of this store",
                fix="pass back the cursor this store's scan() returned, or '' to start",
            ) from None
        with self._reading():
            rows = self._conn.execute(
                f"SELECT rowid, {codec.select} FROM {codec.table} "
                "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (start, max(limit, 1)),
            ).fetchall()
        cursor = str(rows[-1][0]) if len(rows) == max(limit, 1) else ""
        return [codec.record(r[1:]) for r in rows], cursor

    def changes(self, *, since: int = 0, limit: int = 1000) -> list[Change]:
        with self._reading():
            rows = self._conn.execute(
                "SELECT seq, at, op, kind, item_id, payload FROM changes "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit),
            ).fetchall()
        return [
            Change(seq=s, at=from_us(at), op=op, kind=kind, item_id=i, payload=json.loads(p))
            for s, at, op, kind, i, p in rows
        ]

    def stats(self) -> StoreStats:
        with self._reading():  # columns in StoreStats field order
            row = self._conn.execute(
                "SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM chunks), "
                "(SELECT count(*) FROM entities), (SELECT count(*) FROM facts), "
                "(SELECT count(*) FROM facts WHERE status = 'active' AND retired_at IS NULL), "
                "(SELECT count(*) FROM evidence), (SELECT count(*) FROM changes), "
                "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version')"
            ).fetchone()
        return StoreStats(**dict(zip(StoreStats.model_fields, row, strict=True)))

    # -- playbooks (SQL in sqlite_playbooks.py) ---------------------------------------------

    def get_playbook(self, name: str) -> Playbook | None:
        with self._reading():
            return sqlite_playbooks.get(self._conn, name)

    def save_playbook(self, revision: Revision, *, expected_version: int) -> None:
        with self._writing():
            sqlite_playbooks.save(self._conn, revision, expected_version=expected_version)

    def playbook_history(self, name: str, *, since: int = 0) -> list[HistoryEntry]:
        with self._reading():
            return sqlite_playbooks.history(self._conn, name, since=since)

    def list_playbooks(self) -> list[str]:
        with self._reading():
            return sqlite_playbooks.names(self._conn)
