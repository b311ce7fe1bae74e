"""The Neo4j graph store: the embedded store's contract on a Neo4j 5.18+ server.

All Cypher lives in cypher.py (the graph model is explained there); neo4j_tx.py runs it in
transactions, with retries, using the official sync driver. Semantics match the SQLite store
and are checked by the same conformance suite.

Where Neo4j differs: vector search uses its approximate (HNSW) index, with exact cosine
scores recomputed; a store keeps embeddings of one dimension per kind (neo4j_vectors.py).
Times are stored as epoch microseconds, as in SQLite (neo4j_codec.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from neo4j import GraphDatabase, Transaction
from neo4j.exceptions import ConfigurationError
from pydantic import BaseModel

from evergraph.errors import StoreError, StoreFormatError, UsageError
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
from evergraph.graph.store import cypher
from evergraph.graph.store import neo4j_codec as codec
from evergraph.graph.store.base import Record
from evergraph.graph.store.cypher import Statement, VectorLabel
from evergraph.graph.store.neo4j_errors import REFERENCES_FIX, check_version
from evergraph.graph.store.neo4j_tx import Neo4jTransactions, Rows, run
from evergraph.graph.store.neo4j_vectors import VectorIndexes
from evergraph.graph.store.playbook_checks import bullet_writes, check_save
from evergraph.graph.store.shared import (
    check_history,
    evidence_payload,
    retire_payload,
    status_value,
    to_json,
    walk,
)
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Playbook, id_number

M = TypeVar("M", bound=BaseModel)


class _Identified(Protocol):
    id: str


K = TypeVar("K", bound=_Identified)


@dataclass(frozen=True)
class ServerInfo:
    version: str
    edition: str


def _latest(records: Sequence[K]) -> list[K]:
    """One record per id, the last one: rows of one UNWIND must not touch the same node."""
    return list({r.id: r for r in records}.values())


def _public(uri: str) -> str:
    """The URI without credentials: it is printed in messages and by `doctor`."""
    parts = urlsplit(uri)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")


class Neo4jGraphStore(Neo4jTransactions):
    """`GraphStore` on a Neo4j 5.18+ database; safe to share between threads (one at a time)."""

    def __init__(
        self,
        uri: str,
        user: str = "neo4j",
        password: str = "",
        database: str | None = None,
        *,
        connection_timeout: float = 10.0,
        attempts: int = 4,
        index_timeout_s: int = 300,
    ) -> None:
        location = f"{_public(uri)}/{database}" if database else _public(uri)
        self._index_timeout_s = index_timeout_s
        self._vectors = VectorIndexes(self._autocommit, index_timeout_s)
        try:
            driver = GraphDatabase.driver(
                uri,
                auth=(user, password) if password else None,
                connection_timeout=connection_timeout,
            )
        except (ValueError, ConfigurationError) as e:
            raise UsageError(f"cannot use {location}: {e}", fix="correct EVERGRAPH_STORE") from e
        super().__init__(driver, database, location, attempts)
        try:
            rows = self._read(lambda tx: run(tx, cypher.server_components()))
            kernel = next((r for r in rows if r["name"] == "Neo4j Kernel"), rows[0])
            self.server = ServerInfo(kernel["versions"][0], kernel["edition"])
            check_version(self.server.version, self.location)
            self._prepare()
        except BaseException:
            self._driver.close()
            raise

    def __enter__(self) -> Neo4jGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._driver.close()

    def _prepare(self) -> None:
        """Refuse a database holding someone else's data (left untouched) or written by a
        newer Evergraph; then create what is missing: constraints, indexes, the metadata."""
        meta = self._read(lambda tx: run(tx, cypher.store_meta()))[0]
        if meta["version"] is None and meta["has_nodes"]:
            raise StoreFormatError(
                f"{self.location} holds data that is not Evergraph's",
                fix="point EVERGRAPH_STORE at an empty database or one Evergraph created "
                "(neo4j://HOST:7687/DATABASE); this one was left untouched",
            )
        if (meta["version"] or 0) > cypher.SCHEMA_VERSION:
            raise StoreFormatError(
                f"{self.location} was written by a newer Evergraph (store schema "
                f"{meta['version']}; this version reads up to {cypher.SCHEMA_VERSION})",
                fix="upgrade Evergraph (pip install -U evergraph)",
            )
        ddl = [
            *cypher.schema(),
            cypher.init_meta(),
            cypher.upgrade_meta(),
            cypher.await_indexes(self._index_timeout_s),
        ]
        self._autocommit(ddl)
        self._vectors.refresh()

    # -- transaction hooks ------------------------------------------------------------------

    def _begin_write(self, tx: Transaction) -> None:
        """Lock the metadata node first: writers queue (as with SQLite's BEGIN IMMEDIATE)."""
        if not run(tx, cypher.begin_write(utcnow())):
            raise StoreError(
                f"the Evergraph metadata in {self.location} is gone (was the database wiped?)",
                fix="reopen the store: Evergraph recreates its schema in an empty database",
            )

    def _before_commit(self, tx: Transaction) -> None:
        """SQLite's deferred foreign keys, Neo4j style: see cypher.py on :Pending."""
        if missing := run(tx, cypher.pending()):
            names = ", ".join(f"{r['label']} {r['id']!r}" for r in missing)
            raise UsageError(
                f"rejected by the store: {names} referred to but never written", fix=REFERENCES_FIX
            )

    def _settled(self, committed: bool) -> None:
        if committed:
            self._vectors.create_new()
        else:
            self._vectors.discard_new()

    def _log(self, tx: Transaction, op: str, kind: str, items: list[tuple[str, str]]) -> None:
        if items:
            run(tx, cypher.log_changes(op, kind, utcnow(), items))

    # -- writes ---------------------------------------------------------------------------------

    def _upsert(
        self,
        kind: str,
        statement: Statement,
        logged: Sequence[_Identified],
        before: Callable[[], None] = lambda: None,
    ) -> None:
        """One statement and its log lines ("upsert", no payload, as SQLite logs them)."""
        if not logged:
            return

        def work(tx: Transaction) -> None:
            before()
            run(tx, statement)
            self._log(tx, "upsert", kind, [(r.id, "{}") for r in logged])

        self._write(work)

    def upsert_sources(self, sources: Sequence[Source]) -> None:
        self._upsert("source", cypher.upsert_sources(_latest(sources)), sources)

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None:
        latest = _latest(chunks)
        note = partial(self._vectors.note, "Chunk", [c.embedding for c in latest])
        self._upsert("chunk", cypher.upsert_chunks(latest), chunks, note)

    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        latest = _latest(entities)
        note = partial(self._vectors.note, "Entity", [e.embedding for e in latest])
        self._upsert("entity", cypher.upsert_entities(latest), latest, note)

    def upsert_facts(self, facts: Sequence[Fact]) -> None:
        self._upsert("fact", cypher.upsert_facts(_latest(facts)), facts)

    def add_evidence(self, evidence: Sequence[Evidence]) -> None:
        if not evidence:
            return
        statement = cypher.add_evidence({cypher.evidence_key(e): e for e in evidence}.values())

        def work(tx: Transaction) -> None:
            run(tx, statement)
            items = [(e.fact_id, to_json(evidence_payload(e))) for e in evidence]
            self._log(tx, "add", "evidence", items)

        self._write(work)

    def retire_fact(
        self,
        fact_id: str,
        *,
        at: datetime,
        reason: str,
        status: FactStatus = FactStatus.SUPERSEDED,
        valid_to: datetime | None = None,
    ) -> None:
        statement = cypher.retire_fact(
            fact_id, at=at, reason=reason, status=status_value(status), valid_to=valid_to
        )

        def work(tx: Transaction) -> None:
            if not run(tx, statement):
                raise UsageError(f"no fact with id {fact_id!r}", fix="retire an existing fact")
            payload = to_json(retire_payload(reason, status, at, valid_to))
            self._log(tx, "retire", "fact", [(fact_id, payload)])

        self._write(work)

    def remove_evidence(self, evidence: Sequence[Evidence]) -> int:
        if not evidence:
            return 0
        statement = cypher.remove_evidence(evidence)

        def work(tx: Transaction) -> int:
            rows = run(tx, statement)
            payloads = [
                (r["fact_id"], to_json({"source_id": r["source_id"], "chunk_id": r["chunk_id"]}))
                for r in rows
            ]
            self._log(tx, "remove", "evidence", payloads)
            return len(rows)

        return self._write(work)

    def delete_source(self, source_id: str) -> int:
        def work(tx: Transaction) -> int:
            found = run(tx, cypher.count_source_chunks(source_id))
            if not found:
                return 0
            candidates = run(tx, cypher.delete_source_evidence(source_id))[0]["facts"]
            run(tx, cypher.delete_source_nodes(source_id))
            gone = run(tx, cypher.delete_unsupported_facts(candidates)) if candidates else []
            deleted = [r["fact_id"] for r in gone]
            summary = to_json({"chunks": found[0]["chunks"], "facts": len(deleted)})
            self._log(tx, "delete", "source", [(source_id, summary)])
            origin = to_json({"source_id": source_id})
            self._log(tx, "delete", "fact", [(f, origin) for f in deleted])
            return len(deleted)

        return self._write(work)

    # -- reads ----------------------------------------------------------------------------------

    def _rows(self, statement: Statement) -> Rows:
        return self._read(lambda tx: run(tx, statement))

    def _records(self, statement: Statement, decoder: codec.PropertyCodec[M]) -> list[M]:
        return [decoder.record(r["props"]) for r in self._rows(statement)]

    def _scored(
        self, statement: Statement, decoder: codec.PropertyCodec[M]
    ) -> list[tuple[M, float]]:
        return [(decoder.record(r["props"]), float(r["score"])) for r in self._rows(statement)]

    def _one(self, label: cypher.Label, item_id: str, decoder: codec.PropertyCodec[M]) -> M | None:
        found = self._records(cypher.get(label, item_id), decoder)
        return found[0] if found else None

    def get_source(self, source_id: str) -> Source | None:
        return self._one("Source", source_id, codec.SOURCE)

    def get_entity(self, entity_id: str) -> Entity | None:
        return self._one("Entity", entity_id, codec.ENTITY)

    def get_fact(self, fact_id: str) -> Fact | None:
        return self._one("Fact", fact_id, codec.FACT)

    def get_entities(self, entity_ids: Sequence[str]) -> list[Entity]:
        ids = list(dict.fromkeys(entity_ids))
        return self._records(cypher.get_many("Entity", ids), codec.ENTITY) if ids else []

    def get_facts(self, fact_ids: Sequence[str]) -> list[Fact]:
        ids = list(dict.fromkeys(fact_ids))
        return self._records(cypher.get_many("Fact", ids), codec.FACT) if ids else []

    def chunks_of(self, source_ids: Sequence[str]) -> list[Chunk]:
        ids = list(dict.fromkeys(source_ids))
        return self._records(cypher.chunks_of(ids), codec.CHUNK) if ids else []

    def find_sources(self, key: str) -> list[Source]:
        return self._records(cypher.find_sources(key), codec.SOURCE) if key else []

    def find_entities(self, name: str, *, type: str | None = None, limit: int = 10) -> list[Entity]:
        """Most mentioned first."""
        if limit <= 0:
            return []
        return self._records(cypher.find_entities(name, type=type, limit=limit), codec.ENTITY)

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
        statement = cypher.facts_about(
            entity_id, predicate=predicate, as_of=as_of, recorded_at=recorded_at, history=history
        )
        return self._records(statement, codec.FACT)

    def facts_by_subject(self, pairs: Sequence[tuple[str, str]]) -> list[Fact]:
        return self._records(cypher.facts_by_subject(pairs), codec.FACT) if pairs else []

    def evidence_for(self, fact_id: str) -> list[Evidence]:
        return self._records(cypher.evidence_for(fact_id), codec.EVIDENCE)

    def evidence_from(self, source_id: str) -> list[Evidence]:
        return self._records(cypher.evidence_from(source_id), codec.EVIDENCE)

    def neighbourhood(
        self, entity_ids: Sequence[str], *, hops: int = 2, as_of: datetime | None = None
    ) -> list[Fact]:
        """Breadth-first, one query per hop, walking only facts that hold as of `as_of`."""

        def work(tx: Transaction) -> Rows:
            return walk(
                entity_ids,
                hops,
                lambda frontier: run(tx, cypher.facts_touching(frontier, as_of=as_of)),
                lambda row: (
                    row["props"]["id"],
                    row["props"]["subject_id"],
                    row["props"].get("object_id"),
                ),
            )

        return [codec.FACT.record(r["props"]) for r in self._read(work)]

    def search_chunks_text(self, query: str, *, k: int = 10) -> list[tuple[Chunk, float]]:
        lucene = cypher.fulltext_query(query)
        if not lucene or k <= 0:
            return []
        return self._scored(cypher.search_chunks_text(lucene, k=k), codec.CHUNK)

    def _vector_search(self, label: VectorLabel, vector: Sequence[float], k: int) -> bool:
        return self._vectors.searchable(label, vector) and k > 0

    def search_chunks_vector(
        self, vector: Sequence[float], *, k: int = 10
    ) -> list[tuple[Chunk, float]]:
        if not self._vector_search("Chunk", vector, k):
            return []
        return self._scored(cypher.search_vector("Chunk", vector, k=k), codec.CHUNK)

    def search_entities_vector(
        self, vector: Sequence[float], *, k: int = 10, type: str | None = None
    ) -> list[tuple[Entity, float]]:
        if not self._vector_search("Entity", vector, k):
            return []
        if type is None:
            statement = cypher.search_vector("Entity", vector, k=k)
        else:
            statement = cypher.search_entities_of_type(vector, type=type, k=k)
        return self._scored(statement, codec.ENTITY)

    def scan(
        self, kind: type[Record], *, after: str = "", limit: int = 1000
    ) -> tuple[list[Record], str]:
        """Pages in key order (id; evidence: insertion number); the cursor is that key as
        JSON."""
        try:
            position = json.loads(after) if after else None
            if position is not None and not isinstance(position, int if kind is Evidence else str):
                raise ValueError(after)
        except ValueError:
            raise UsageError(
                f"{after!r} is not a scan cursor of this store",
                fix="pass back the cursor this store's scan() returned, or '' to start",
            ) from None
        limit = max(limit, 1)
        rows = self._rows(cypher.scan(kind, after=position, limit=limit))
        cursor = json.dumps(rows[-1]["cursor"]) if len(rows) == limit else ""
        return [codec.BY_MODEL[kind].record(r["props"]) for r in rows], cursor

    def changes(self, *, since: int = 0, limit: int = 1000) -> list[Change]:
        if limit <= 0:
            return []
        return self._records(cypher.changes(since=since, limit=limit), codec.CHANGE)

    def stats(self) -> StoreStats:
        return StoreStats(**self._rows(cypher.stats())[0])

    # -- playbooks -------------------------------------------------------------------------------

    def get_playbook(self, name: str) -> Playbook | None:
        rows = self._rows(cypher.get_playbook(name))
        if not rows:
            return None
        props = rows[0]["props"]
        bullets = sorted(
            (cypher.BULLET.record(b) for b in rows[0]["bullets"]), key=lambda b: id_number(b.id)
        )
        return Playbook(
            name=props["name"],
            sections=props["sections"],
            bullets=bullets,
            version=props["version"],
            next_id=props["next_id"],
        )

    def save_playbook(self, revision: Revision, *, expected_version: int) -> None:
        """The version is read after `_begin_write` locked the metadata node: no other
        writer can save between the check and the writes."""
        pb = revision.playbook

        def work(tx: Transaction) -> None:
            found = run(tx, cypher.playbook_state(pb.name))
            stored = found[0]["version"] if found else None
            check_save(revision, stored_version=stored, expected_version=expected_version)
            dims = {b["id"]: b["dim"] for b in found[0]["bullets"]} if found else {}
            run(tx, cypher.save_playbook(pb, bullet_writes(revision, dims)))
            if revision.entries:
                run(tx, cypher.append_playbook_entries(pb.name, revision.entries))

        self._write(work)

    def playbook_history(self, name: str, *, since: int = 0) -> list[HistoryEntry]:
        rows = self._rows(cypher.playbook_history(name, since=since))
        return [HistoryEntry.model_validate_json(r["entry"]) for r in rows]

    def list_playbooks(self) -> list[str]:
        return sorted(r["name"] for r in self._rows(cypher.list_playbooks()))


def check_neo4j(store: Neo4jGraphStore) -> str:
    """For `evergraph doctor`: one line on a healthy store, else an EvergraphError with the
    fix. Checks connectivity (a query), the server version, and that every index is online."""
    stats = store.stats()
    check_version(store.server.version, store.location)
    states = {r["name"]: r["state"] for r in store._autocommit([cypher.show_indexes()])[0]}
    vectors = store._vectors.dims
    expected = [*cypher.SCHEMA_INDEXES, *(cypher.VECTOR_INDEXES[label] for label in vectors)]
    if missing := [name for name in expected if name not in states]:
        raise StoreError(
            f"{store.location} lacks the indexes {', '.join(missing)}",
            fix="open the store once as a user allowed to create indexes: Evergraph creates "
            "what is missing",
        )
    if offline := [f"{name} ({states[name]})" for name in expected if states[name] != "ONLINE"]:
        raise StoreError(
            f"indexes not online in {store.location}: {', '.join(offline)}",
            fix="wait for POPULATING ones; drop a FAILED one (DROP INDEX name, in "
            "cypher-shell) and reopen the store to recreate it",
        )
    dims = ", ".join(f"{label.lower()} {dim}d" for label, dim in vectors.items()) or "none yet"
    return (
        f"Neo4j {store.server.version} {store.server.edition} at {store.location} "
        f"(schema v{stats.schema_version}, {len(expected)} indexes online, vector: {dims}): "
        f"{stats.sources} sources, {stats.entities} entities, {stats.facts} facts"
    )
