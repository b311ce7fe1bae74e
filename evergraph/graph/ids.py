"""Deterministic ids for entities and facts, so that integrating the same thing twice finds
what the first time wrote instead of adding a copy.

An entity is its type and case-folded name; a fact is its subject, predicate and object (an
entity id or a literal, kept apart so that an entity id and an equal string never collide).
When a triple needs a second record (it held, stopped holding, and holds again), the record is
numbered after the base id.
"""

from __future__ import annotations

from evergraph.graph.models import Evidence, content_digest, content_id
from evergraph.graph.store.shared import name_key


def entity_id(type: str, name: str) -> str:
    return content_id("entity", type, name_key(name))


def fact_id(
    subject_id: str, predicate: str, object_id: str | None, object_value: str | None
) -> str:
    obj = ("entity", object_id) if object_id is not None else ("value", object_value or "")
    return content_id("fact", subject_id, predicate, *obj)


def record_id(base: str, number: int) -> str:
    """The id of a triple's record after the first `number` ones (number 0 is the base)."""
    return base if number == 0 else content_id(base, str(number))


def evidence_digest(
    fact_id: str, source_id: str, chunk_id: str | None, quote: str, model: str
) -> bytes:
    """What makes evidence the same extraction (added again, it is refreshed, not duplicated):
    SQLite keys evidence by these 16 bytes, Neo4j by their hex."""
    return content_digest(fact_id, source_id, chunk_id or "", quote, model)


def evidence_digest_of(e: Evidence) -> bytes:
    return evidence_digest(e.fact_id, e.source_id, e.chunk_id, e.quote, e.model)
