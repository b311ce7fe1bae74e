"""Every Cypher statement of the Neo4j store, as pure functions returning a `Statement`.

User data only ever travels in parameters: labels, relationship types, property names and
index names are the constants below, and the one number spliced into text (a vector index's
dimensions, which index options do not take as a parameter) is validated as an integer first.
Neo4j 5 syntax throughout; the store needs Neo4j 5.18 or later (CREATE VECTOR INDEX,
`vector.similarity.cosine`).

Graph model. Facts are nodes, not relationships: a fact needs evidence links, bi-temporal
fields and possibly a literal object, and a relationship can neither be the target of an
evidence relationship nor point at a literal. So

    (:Chunk)-[:PART_OF]->(:Source)
    (:Entity)-[:NAMED]->(:EntityName {key})      one per case-folded name or alias
    (:Fact)-[:SUBJECT]->(:Entity), (:Fact)-[:OBJECT]->(:Entity)   (no OBJECT for literals)
    (:Evidence)-[:SUPPORTS]->(:Fact), -[:CITES]->(:Source), -[:QUOTES]->(:Chunk)
    (:Change {seq}), the change log; (:EvergraphMeta {key: 'store'}) holds the counters.
    (:Playbook {name})-[:HAS]->(:PlaybookBullet), -[:LOGGED]->(:PlaybookEntry {seq, entry})

SQLite checks references when a transaction commits, so records may be written in any order
inside one. Neo4j has no deferred constraints; instead a write that refers to a record not
written yet creates it as a placeholder labelled :Pending, writing the record removes the
label, and a transaction still holding a :Pending node when it commits is rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from evergraph.errors import UsageError
from evergraph.graph.ids import evidence_digest_of
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, FactStatus, Source
from evergraph.graph.store import neo4j_codec as codec
from evergraph.graph.store.playbook_checks import BulletWrites
from evergraph.graph.store.shared import from_us, holds_predicate, name_key, query_terms, to_us
from evergraph.playbooks.history import HistoryEntry
from evergraph.playbooks.models import Bullet, Playbook

Label = Literal["Source", "Chunk", "Entity", "Fact", "Evidence"]
LABELS: tuple[Label, ...] = ("Source", "Chunk", "Entity", "Fact", "Evidence")

META_KEY = "store"
# 2: document keys on sources, merges on entities, confidence and mentions on evidence. Nodes
# written by 1 lack those properties and read as their defaults (neo4j_codec.py).
# 3: playbooks (new labels only; nothing written before changes).
SCHEMA_VERSION = 3
MAX_DIMENSIONS = 4096  # Neo4j's limit for vector indexes (provider vector-2.0)
CHUNK_TEXT_INDEX = "chunk_text"
VectorLabel = Literal["Chunk", "Entity"]
VECTOR_INDEXES: dict[VectorLabel, str] = {"Chunk": "chunk_embedding", "Entity": "entity_embedding"}
_FULLTEXT_OPTIONS = (
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'standard-no-stop-words', "
    "`fulltext.eventually_consistent`: false}}"  # updated at commit: reads see writes
)
_LUCENE_SPECIAL = re.compile(r'[+\-&|!(){}\[\]^"~*?:\\/]')


@dataclass(frozen=True)
class Statement:
    text: str
    params: dict[str, Any] = field(default_factory=dict)


# -- schema -------------------------------------------------------------------------------

_UNIQUE = {  # constraint name: (label, property)
    "source_id": ("Source", "id"),
    "chunk_id": ("Chunk", "id"),
    "entity_id": ("Entity", "id"),
    "fact_id": ("Fact", "id"),
    "evidence_key": ("Evidence", "key"),
    "change_seq": ("Change", "seq"),
    "meta_key": ("EvergraphMeta", "key"),
    "playbook_name": ("Playbook", "name"),
}
_RANGE = {  # index name: (label, property); temporal ones serve as-of and trend queries
    "entity_name_key": ("EntityName", "key"),
    "entity_type": ("Entity", "type"),
    "evidence_seq": ("Evidence", "seq"),
    "fact_recorded_at": ("Fact", "recorded_at"),
    "fact_valid_from": ("Fact", "valid_from"),
    "fact_valid_to": ("Fact", "valid_to"),
    "source_published_at": ("Source", "published_at"),
    "source_key": ("Source", "key"),
}
_FULLTEXT = {  # fact_text is for people and tools querying the graph; no store method reads it
    CHUNK_TEXT_INDEX: ("Chunk", "[n.text]"),
    "fact_text": ("Fact", "[n.predicate, n.object_value]"),
}
SCHEMA_INDEXES = (*_UNIQUE, *_RANGE, *_FULLTEXT)  # a uniqueness constraint owns an index


def schema() -> list[Statement]:
    """Idempotent DDL, run at start-up, each statement in its own transaction."""
    return [
        *(
            Statement(
                f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
            )
            for name, (label, prop) in _UNIQUE.items()
        ),
        *(
            Statement(f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})")
            for name, (label, prop) in _RANGE.items()
        ),
        *(
            Statement(
                f"CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) "
                f"ON EACH {props} {_FULLTEXT_OPTIONS}"
            )
            for name, (label, props) in _FULLTEXT.items()
        ),
    ]


def validate_dimensions(value: object) -> int:
    """The one number spliced into Cypher text; anything but a plain int in range is refused."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise UsageError(
            f"a vector index needs 1 to {MAX_DIMENSIONS} dimensions as an integer, not {value!r}",
            fix=f"embed with a model of at most {MAX_DIMENSIONS} dimensions",
        )
    return value


def vector_index(label: VectorLabel, dimensions: object) -> Statement:
    """Created lazily, once the first embeddings tell the dimension (neo4j_vectors.py)."""
    dims = validate_dimensions(dimensions)
    return Statement(
        f"CREATE VECTOR INDEX {VECTOR_INDEXES[label]} IF NOT EXISTS "
        f"FOR (n:{label}) ON (n.embedding) OPTIONS {{indexConfig: {{"
        f"`vector.dimensions`: {dims}, `vector.similarity_function`: 'cosine'}}}}"
    )


def await_indexes(timeout_s: int) -> Statement:
    """Indexes are built in the background; queries on one still populating fail."""
    return Statement("CALL db.awaitIndexes($timeout)", {"timeout": timeout_s})


def await_index(name: str, timeout_s: int) -> Statement:
    return Statement("CALL db.awaitIndex($name, $timeout)", {"name": name, "timeout": timeout_s})


def show_indexes() -> Statement:
    return Statement("SHOW INDEXES YIELD name, type, state, labelsOrTypes, options")


def server_components() -> Statement:
    return Statement("CALL dbms.components() YIELD name, versions, edition")


def store_meta() -> Statement:
    """The store's schema version (None in a database Evergraph never wrote) and whether the
    database holds anything at all."""
    return Statement(
        "OPTIONAL MATCH (m:EvergraphMeta {key: $meta}) "
        "RETURN m.schema_version AS version, EXISTS { MATCH (n) } AS has_nodes",
        {"meta": META_KEY},
    )


def init_meta() -> Statement:
    return Statement(
        "MERGE (m:EvergraphMeta {key: $meta}) "
        "ON CREATE SET m.app = 'evergraph', m.schema_version = $version, "
        "m.change_seq = 0, m.evidence_seq = 0",
        {"meta": META_KEY, "version": SCHEMA_VERSION},
    )


def upgrade_meta() -> Statement:
    """A store written by an older schema is readable as it is: only its version moves up."""
    return Statement(
        "MATCH (m:EvergraphMeta {key: $meta}) WHERE m.schema_version < $version "
        "SET m.schema_version = $version",
        {"meta": META_KEY, "version": SCHEMA_VERSION},
    )


def wipe() -> list[Statement]:
    """Empty the database, vector indexes included (their dimension comes from the data).
    Used by the conformance fixture on a disposable database."""
    return [
        Statement("MATCH (n) DETACH DELETE n"),
        *(Statement(f"DROP INDEX {name} IF EXISTS") for name in VECTOR_INDEXES.values()),
    ]


# -- transaction bookkeeping ---------------------------------------------------------------


def begin_write(at: datetime) -> Statement:
    """First statement of every write transaction: it write-locks the one metadata node, so
    writers queue here (as SQLite's BEGIN IMMEDIATE does) instead of deadlocking later."""
    return Statement(
        "MATCH (m:EvergraphMeta {key: $meta}) SET m.last_write_at = $now "
        "RETURN m.schema_version AS version",
        {"meta": META_KEY, "now": to_us(at)},
    )


def pending() -> Statement:
    """Placeholders left in a transaction: references to records that were never written."""
    return Statement(
        "MATCH (p:Pending) "
        "RETURN [label IN labels(p) WHERE label <> 'Pending'][0] AS label, p.id AS id LIMIT 5"
    )


def log_changes(op: str, kind: str, at: datetime, items: Sequence[tuple[str, str]]) -> Statement:
    """Append (item id, JSON payload) lines to the change log. Sequence numbers come from a
    counter on the metadata node, bumped in the same transaction: reading it in the SET makes
    Cypher lock the node first, so numbers are unique and follow commit order."""
    return Statement(
        "MATCH (m:EvergraphMeta {key: $meta}) "
        "SET m.change_seq = m.change_seq + size($items) "
        "WITH m.change_seq - size($items) AS base "
        "UNWIND range(0, size($items) - 1) AS i "
        "CREATE (:Change {seq: base + i + 1, `at`: $logged_at, op: $op, kind: $kind, "
        "item_id: $items[i].id, payload: $items[i].payload})",
        {
            "meta": META_KEY,
            "logged_at": to_us(at),
            "op": op,
            "kind": kind,
            "items": [{"id": i, "payload": p} for i, p in items],
        },
    )


# -- writes (callers pass batches without duplicate ids: the last version wins) -------------


def upsert_sources(sources: Iterable[Source]) -> Statement:
    return Statement(
        "UNWIND $rows AS row MERGE (s:Source {id: row.id}) SET s = row REMOVE s:Pending",
        {"rows": [codec.SOURCE.properties(s) for s in sources]},
    )


def upsert_chunks(chunks: Iterable[Chunk]) -> Statement:
    return Statement(
        "UNWIND $rows AS row "
        "MERGE (c:Chunk {id: row.id}) SET c = row REMOVE c:Pending "
        "WITH c, row OPTIONAL MATCH (c)-[old:PART_OF]->() DELETE old "
        "WITH DISTINCT c, row "
        "MERGE (s:Source {id: row.source_id}) ON CREATE SET s:Pending "
        "CREATE (c)-[:PART_OF]->(s)",
        {"rows": [codec.CHUNK.properties(c) for c in chunks]},
    )


def upsert_entities(entities: Iterable[Entity]) -> Statement:
    """Names and aliases become :EntityName nodes (a list property cannot be indexed)."""
    rows = [
        {
            "props": codec.ENTITY.properties(e),
            "names": [k for k in dict.fromkeys(map(name_key, [e.name, *e.aliases])) if k],
        }
        for e in entities
    ]
    return Statement(
        "UNWIND $rows AS row "
        "MERGE (e:Entity {id: row.props.id}) SET e = row.props REMOVE e:Pending "
        "WITH e, row OPTIONAL MATCH (e)-[:NAMED]->(old:EntityName) DETACH DELETE old "
        "WITH DISTINCT e, row "
        "FOREACH (name IN row.names | CREATE (e)-[:NAMED]->(:EntityName {key: name}))",
        {"rows": rows},
    )


def upsert_facts(facts: Iterable[Fact]) -> Statement:
    return Statement(
        "UNWIND $rows AS row "
        "MERGE (f:Fact {id: row.id}) SET f = row REMOVE f:Pending "
        "WITH f, row OPTIONAL MATCH (f)-[old:SUBJECT|OBJECT]->() DELETE old "
        "WITH DISTINCT f, row "
        "MERGE (s:Entity {id: row.subject_id}) ON CREATE SET s:Pending "
        "CREATE (f)-[:SUBJECT]->(s) "
        "FOREACH (object_id IN [x IN [row.object_id] WHERE x IS NOT NULL] | "
        "MERGE (o:Entity {id: object_id}) ON CREATE SET o:Pending "
        "CREATE (f)-[:OBJECT]->(o))",
        {"rows": [codec.FACT.properties(f) for f in facts]},
    )


def evidence_key(e: Evidence) -> str:
    """The same extraction added twice (a resumed batch job) updates instead of duplicating."""
    return evidence_digest_of(e).hex()


def add_evidence(evidence: Iterable[Evidence]) -> Statement:
    """New evidence takes the next number of a counter, which orders equal extraction times
    (SQLite orders them by rowid)."""
    rows = [{"key": evidence_key(e), "props": codec.EVIDENCE.properties(e)} for e in evidence]
    return Statement(
        "MATCH (m:EvergraphMeta {key: $meta}) "
        "SET m.evidence_seq = m.evidence_seq + size($rows) "
        "WITH m.evidence_seq - size($rows) AS base "
        "UNWIND range(0, size($rows) - 1) AS i "
        "WITH base + i + 1 AS seq, $rows[i] AS row "
        "MERGE (ev:Evidence {key: row.key}) ON CREATE SET ev.seq = seq "
        "SET ev += row.props "
        "MERGE (f:Fact {id: row.props.fact_id}) ON CREATE SET f:Pending "
        "MERGE (ev)-[:SUPPORTS]->(f) "
        "MERGE (s:Source {id: row.props.source_id}) ON CREATE SET s:Pending "
        "MERGE (ev)-[:CITES]->(s) "
        "FOREACH (chunk_id IN [x IN [row.props.chunk_id] WHERE x IS NOT NULL] | "
        "MERGE (c:Chunk {id: chunk_id}) ON CREATE SET c:Pending "
        "MERGE (ev)-[:QUOTES]->(c))",
        {"meta": META_KEY, "rows": rows},
    )


def retire_fact(
    fact_id: str, *, at: datetime, reason: str, status: str, valid_to: datetime | None
) -> Statement:
    return Statement(
        "MATCH (f:Fact {id: $id}) WHERE NOT f:Pending "
        "SET f.retired_at = $retired_at, f.retire_reason = $reason, f.status = $status, "
        "f.valid_to = coalesce($valid_to, f.valid_to) "
        "RETURN f.id AS id",
        {
            "id": fact_id,
            "retired_at": to_us(at),
            "reason": reason,
            "status": status,
            "valid_to": to_us(valid_to),
        },
    )


def remove_evidence(evidence: Iterable[Evidence]) -> Statement:
    """Returns one row per evidence record removed."""
    return Statement(
        "UNWIND $keys AS key MATCH (ev:Evidence {key: key}) "
        "WITH ev, ev.fact_id AS fact_id, ev.source_id AS source_id, ev.chunk_id AS chunk_id "
        "DETACH DELETE ev RETURN fact_id, source_id, chunk_id",
        {"keys": list(dict.fromkeys(evidence_key(e) for e in evidence))},
    )


def count_source_chunks(source_id: str) -> Statement:
    """No row when the source does not exist."""
    return Statement(
        "MATCH (s:Source {id: $id}) WHERE NOT s:Pending "
        "RETURN COUNT { (s)<-[:PART_OF]-(:Chunk) } AS chunks",
        {"id": source_id},
    )


def delete_source_evidence(source_id: str) -> Statement:
    """Evidence citing the source or quoting one of its chunks goes; returns the ids of the
    facts it supported (they may now be left without evidence)."""
    return Statement(
        "MATCH (s:Source {id: $id}) "
        "OPTIONAL MATCH (s)<-[:PART_OF]-(c:Chunk) "
        "WITH s, collect(c) AS chunks "
        "UNWIND [s] + chunks AS origin "
        "MATCH (origin)<-[:CITES|QUOTES]-(ev:Evidence)-[:SUPPORTS]->(f:Fact) "
        "WITH collect(DISTINCT ev) AS evidence, collect(DISTINCT f.id) AS facts "
        "FOREACH (ev IN evidence | DETACH DELETE ev) "
        "RETURN facts",
        {"id": source_id},
    )


def delete_source_nodes(source_id: str) -> Statement:
    return Statement(
        "MATCH (s:Source {id: $id}) "
        "OPTIONAL MATCH (s)<-[:PART_OF]-(c:Chunk) DETACH DELETE c "
        "WITH DISTINCT s DETACH DELETE s",
        {"id": source_id},
    )


def delete_unsupported_facts(fact_ids: Sequence[str]) -> Statement:
    return Statement(
        "UNWIND $ids AS fact_id "
        "MATCH (f:Fact {id: fact_id}) "
        "WHERE NOT EXISTS { (f)<-[:SUPPORTS]-(:Evidence) } "
        "DETACH DELETE f RETURN fact_id",
        {"ids": list(fact_ids)},
    )


# -- reads ----------------------------------------------------------------------------------


def _label(label: str) -> str:
    """Labels go into query text: only the store's own are accepted."""
    if label not in LABELS:
        raise ValueError(f"not a record label: {label!r}")
    return label


def get(label: Label, item_id: str) -> Statement:
    return Statement(
        f"MATCH (n:{_label(label)} {{id: $id}}) WHERE NOT n:Pending RETURN properties(n) AS props",
        {"id": item_id},
    )


def get_many(label: Label, ids: Sequence[str]) -> Statement:
    """The records that exist, in the order of `ids` (the caller passes each id once)."""
    return Statement(
        f"UNWIND range(0, size($ids) - 1) AS i MATCH (n:{_label(label)} {{id: $ids[i]}}) "
        "WHERE NOT n:Pending RETURN properties(n) AS props ORDER BY i",
        {"ids": list(ids)},
    )


def _chunk_hit(var: str) -> str:
    """A chunk as searches return it: without its embedding, which no reader of a hit needs
    (384 floats a hit over the wire and through the codec)."""
    return f"{var} {{.*, embedding: null}}"


def chunks_of(source_ids: Sequence[str]) -> Statement:
    return Statement(
        "MATCH (s:Source)<-[:PART_OF]-(c:Chunk) WHERE s.id IN $ids AND NOT s:Pending "
        f"RETURN {_chunk_hit('c')} AS props ORDER BY s.id, c.ordinal",
        {"ids": list(source_ids)},
    )


def find_sources(key: str) -> Statement:
    return Statement(
        "MATCH (s:Source {key: $key}) WHERE NOT s:Pending "
        "RETURN properties(s) AS props ORDER BY s.ingested_at, s.id",
        {"key": key},
    )


def find_entities(name: str, *, type: str | None, limit: int) -> Statement:
    return Statement(
        "MATCH (:EntityName {key: $key})<-[:NAMED]-(e:Entity) "
        "WHERE $type IS NULL OR e.type = $type "
        "RETURN properties(e) AS props ORDER BY e.mentions DESC, e.id LIMIT $limit",
        {"key": name_key(name), "type": type, "limit": limit},
    )


def facts_about(
    entity_id: str,
    *,
    predicate: str | None,
    as_of: datetime | None,
    recorded_at: datetime | None,
    history: bool = False,
) -> Statement:
    """With `history`, every fact whatever its time and status."""
    holds, params = (
        ("true", {}) if history else holds_predicate(as_of, recorded_at, field="f.", param="$")
    )
    return Statement(
        "MATCH (:Entity {id: $entity})<-[:SUBJECT|OBJECT]-(f:Fact) "
        "WITH DISTINCT f "
        f"WHERE ($predicate IS NULL OR f.predicate = $predicate) AND {holds} "
        "RETURN properties(f) AS props ORDER BY f.recorded_at, f.id",
        {**params, "entity": entity_id, "predicate": predicate},
    )


def facts_by_subject(pairs: Sequence[tuple[str, str]]) -> Statement:
    """Every fact with one of the (subject id, predicate) pairs, whatever its time and status."""
    return Statement(
        "UNWIND $pairs AS pair "
        "MATCH (:Entity {id: pair[0]})<-[:SUBJECT]-(f:Fact) WHERE f.predicate = pair[1] "
        "RETURN properties(f) AS props",
        {"pairs": [list(p) for p in dict.fromkeys(pairs)]},
    )


def facts_touching(entity_ids: Sequence[str], *, as_of: datetime | None) -> Statement:
    """One hop of `neighbourhood`: facts that hold with any of the entities at either end."""
    holds, params = holds_predicate(as_of, None, field="f.", param="$")
    return Statement(
        "UNWIND $ids AS id "
        "MATCH (:Entity {id: id})<-[:SUBJECT|OBJECT]-(f:Fact) "
        f"WITH DISTINCT f WHERE {holds} "
        "RETURN properties(f) AS props",
        {**params, "ids": list(entity_ids)},
    )


def evidence_for(fact_id: str) -> Statement:
    return Statement(
        "MATCH (:Fact {id: $id})<-[:SUPPORTS]-(ev:Evidence) "
        "RETURN properties(ev) AS props ORDER BY ev.extracted_at, ev.seq",
        {"id": fact_id},
    )


def evidence_from(source_id: str) -> Statement:
    return Statement(
        "MATCH (:Source {id: $id})<-[:CITES]-(ev:Evidence) "
        "RETURN properties(ev) AS props ORDER BY ev.extracted_at, ev.seq",
        {"id": source_id},
    )


def lucene_escape(text: str) -> str:
    """Backslash-escape every character Lucene's query parser gives a meaning."""
    return _LUCENE_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def fulltext_query(text: str) -> str:
    """User text as a Lucene query that cannot be a syntax error: an OR of quoted, escaped
    terms (the same terms the SQLite store searches); empty when the text has no words."""
    return " OR ".join(f'"{lucene_escape(t)}"' for t in query_terms(text))


def search_chunks_text(query: str, *, k: int) -> Statement:
    """BM25 from the full-text index; `query` must come from `fulltext_query`."""
    return Statement(
        f"CALL db.index.fulltext.queryNodes('{CHUNK_TEXT_INDEX}', $query) YIELD node, score "
        f"RETURN {_chunk_hit('node')} AS props, score ORDER BY score DESC LIMIT $k",
        {"query": query, "k": k},
    )


def search_vector(label: VectorLabel, vector: Sequence[float], *, k: int) -> Statement:
    """Approximate k nearest from the vector index, rescored exactly: the index's scores are
    (1 + cosine) / 2 and may be quantised; the store's contract is the cosine itself."""
    props = _chunk_hit("node") if label == "Chunk" else "properties(node)"
    return Statement(
        f"CALL db.index.vector.queryNodes('{VECTOR_INDEXES[label]}', $k, $vector) YIELD node "
        "WITH node, vector.similarity.cosine(node.embedding, $vector) AS similarity "
        f"RETURN {props} AS props, 2 * similarity - 1 AS score ORDER BY score DESC",
        {"k": k, "vector": list(vector)},
    )


def search_entities_of_type(vector: Sequence[float], *, type: str, k: int) -> Statement:
    """Exact search among the entities of one type: filtering the index's top k afterwards
    could return fewer than k, and one type's entities are few enough to scan."""
    return Statement(
        "MATCH (e:Entity {type: $type}) "
        "WHERE e.embedding IS NOT NULL AND size(e.embedding) = size($vector) "
        "WITH e, vector.similarity.cosine(e.embedding, $vector) AS similarity "
        "WHERE similarity IS NOT NULL "
        "RETURN properties(e) AS props, 2 * similarity - 1 AS score "
        "ORDER BY score DESC, e.id LIMIT $k",
        {"type": type, "k": k, "vector": list(vector)},
    )


def changes(*, since: int, limit: int) -> Statement:
    return Statement(
        "MATCH (c:Change) WHERE c.seq > $since "
        "RETURN properties(c) AS props ORDER BY c.seq LIMIT $limit",
        {"since": since, "limit": limit},
    )


def stats() -> Statement:
    return Statement(
        "MATCH (m:EvergraphMeta {key: $meta}) RETURN "
        "COUNT { (:Source) } AS sources, COUNT { (:Chunk) } AS chunks, "
        "COUNT { (:Entity) } AS entities, COUNT { (:Fact) } AS facts, "
        "COUNT { (f:Fact) WHERE f.status = $active AND f.retired_at IS NULL } AS active_facts, "
        "COUNT { (:Evidence) } AS evidence, COUNT { (:Change) } AS changes, "
        "m.schema_version AS schema_version",
        {"meta": META_KEY, "active": FactStatus.ACTIVE.value},
    )


SCAN_KEYS: dict[type[BaseModel], tuple[Label, str]] = {
    Source: ("Source", "id"),
    Chunk: ("Chunk", "id"),
    Entity: ("Entity", "id"),
    Fact: ("Fact", "id"),
    Evidence: ("Evidence", "seq"),  # insertion order, as evidence has no id
}


def scan(kind: type[BaseModel], *, after: str | int | None, limit: int) -> Statement:
    """A page of one kind in key order, after the key `after` (None: from the start); the
    key's range index makes each page a seek, not a rescan."""
    label, key = SCAN_KEYS[kind]
    where = "" if after is None else f"WHERE n.{key} > $after "
    return Statement(
        f"MATCH (n:{_label(label)}) {where}"
        f"RETURN properties(n) AS props, n.{key} AS cursor ORDER BY n.{key} LIMIT $limit",
        {"after": after, "limit": limit},
    )


# -- playbooks ---------------------------------------------------------------------------------

# A bullet's properties: its fields, times as epoch microseconds, the embedding a float list.
BULLET = codec.PropertyCodec(
    Bullet,
    {"created_at": to_us, "updated_at": to_us},
    {"created_at": from_us, "updated_at": from_us},
)


def playbook_state(name: str) -> Statement:
    """What a save checks and compares against: the version, and each bullet's id and
    embedding length (null without one). No row when there is no such playbook."""
    return Statement(
        "MATCH (p:Playbook {name: $name}) RETURN p.version AS version, "
        "[(p)-[:HAS]->(b:PlaybookBullet) | {id: b.id, dim: size(b.embedding)}] AS bullets",
        {"name": name},
    )


def get_playbook(name: str) -> Statement:
    """No row when there is no such playbook; bullets in no particular order."""
    return Statement(
        "MATCH (p:Playbook {name: $name}) "
        "OPTIONAL MATCH (p)-[:HAS]->(b:PlaybookBullet) "
        "RETURN properties(p) AS props, collect(properties(b)) AS bullets",
        {"name": name},
    )


def save_playbook(playbook: Playbook, writes: BulletWrites) -> Statement:
    """The playbook's node and only the bullets in `writes` (`playbook_checks.bullet_writes`);
    the others' nodes are left as they are. New bullets are created, not merged: a MERGE
    scans the playbook's bullets, which would make saving a new playbook quadratic. FOREACH,
    unlike UNWIND, keeps the row when a list is empty."""
    return Statement(
        "MERGE (p:Playbook {name: $name}) "
        "SET p.sections = $sections, p.version = $version, p.next_id = $next_id "
        "WITH p OPTIONAL MATCH (p)-[:HAS]->(old:PlaybookBullet) WHERE old.id IN $removed "
        "DETACH DELETE old "
        "WITH DISTINCT p "
        "FOREACH (row IN $added | CREATE (p)-[:HAS]->(b:PlaybookBullet) SET b = row) "
        "FOREACH (row IN $changed | "
        "MERGE (p)-[:HAS]->(c:PlaybookBullet {id: row.id}) SET c = row)",
        {
            "name": playbook.name,
            "sections": list(playbook.sections),
            "version": playbook.version,
            "next_id": playbook.next_id,
            "removed": writes.removed,
            "added": [BULLET.properties(b) for b in writes.added],
            "changed": [BULLET.properties(b) for b in writes.changed],
        },
    )


def append_playbook_entries(name: str, entries: Sequence[HistoryEntry]) -> Statement:
    """Each entry one JSON document, read back whole and in order."""
    return Statement(
        "MATCH (p:Playbook {name: $name}) "
        "UNWIND $entries AS row "
        "CREATE (p)-[:LOGGED]->(:PlaybookEntry {seq: row.seq, entry: row.entry})",
        {"name": name, "entries": [{"seq": e.seq, "entry": e.model_dump_json()} for e in entries]},
    )


def playbook_history(name: str, *, since: int) -> Statement:
    return Statement(
        "MATCH (:Playbook {name: $name})-[:LOGGED]->(e:PlaybookEntry) WHERE e.seq > $since "
        "RETURN e.entry AS entry ORDER BY e.seq",
        {"name": name, "since": since},
    )


def list_playbooks() -> Statement:
    return Statement("MATCH (p:Playbook) RETURN p.name AS name")
