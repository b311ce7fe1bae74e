"""The graph data model (see DESIGN.md): sources, chunks, entities, bi-temporal facts, evidence.

These are plain pydantic records shared by every store backend; integration rules live
elsewhere in `graph/`, never in the stores.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator


def utcnow() -> datetime:
    return datetime.now(UTC)


def content_digest(*parts: str) -> bytes:
    """16 bytes of SHA-256 over the parts, each ended by a unit separator (one `update`:
    ids are made for every fact and evidence, and per-part updates cost twice as much)."""
    return hashlib.sha256("\x1f".join((*parts, "")).encode()).digest()[:16]


def content_id(*parts: str) -> str:
    """A stable id from content: re-ingesting the same text gives the same id."""
    return content_digest(*parts).hex()


def _aware(v: datetime | None) -> datetime | None:
    """Naive datetimes are taken as UTC so that comparisons never mix the two kinds."""
    if v is not None and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


class FactStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    CONTESTED = "contested"


class Source(BaseModel):
    """One version of a document. `id` is its content hash; `key` is the user's document id,
    shared by every version of that document ("" when the document has none)."""

    id: str
    key: str = ""
    title: str = ""
    text: str
    uri: str = ""
    published_at: datetime | None = None
    ingested_at: datetime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _tz = field_validator("published_at", "ingested_at")(_aware)


class Chunk(BaseModel):
    id: str
    source_id: str
    ordinal: int = Field(ge=0)
    text: str
    embedding: list[float] | None = None


class Merge(BaseModel):
    """A name that entity resolution attached to an existing entity (not by exact match):
    kept on the entity so that `graph.resolve.unmerge` can split it off again."""

    name: str = Field(min_length=1)  # the mention's name as the text gave it
    added: list[str] = Field(default_factory=list)  # names this merge added to the entity
    rule: str  # "alias", "fuzzy" or "embedding"
    score: float
    source_id: str
    at: datetime
    undone_at: datetime | None = None

    _tz = field_validator("at", "undone_at")(_aware)


class Entity(BaseModel):
    id: str
    name: str = Field(min_length=1)
    type: str = "Thing"
    aliases: list[str] = Field(default_factory=list)
    summary: str = ""
    embedding: list[float] | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    mentions: int = Field(0, ge=0)
    merges: list[Merge] = Field(default_factory=list)

    _tz = field_validator("first_seen", "last_seen")(_aware)


class Fact(BaseModel):
    """An edge. `object_id` names an entity; `object_value` holds a literal instead."""

    id: str
    subject_id: str
    predicate: str = Field(min_length=1)
    object_id: str | None = None
    object_value: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    support: int = Field(1, ge=0)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    recorded_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None
    retire_reason: str = ""
    status: FactStatus = FactStatus.ACTIVE
    last_seen: datetime | None = None

    _tz = field_validator("valid_from", "valid_to", "recorded_at", "retired_at", "last_seen")(
        _aware
    )

    def holds(self, as_of: datetime | None = None, recorded_at: datetime | None = None) -> bool:
        """Did the fact hold in the world at `as_of` (default: now), as the store believed
        at `recorded_at` (default: now)?

        Retiring a fact with its validity closed (valid_to set, e.g. superseded by a newer
        value) keeps it as history for earlier `as_of` dates; retiring it with validity open
        withdraws it altogether.
        """
        if recorded_at is not None:
            if self.recorded_at > recorded_at:
                return False
            if self.retired_at is not None and self.retired_at <= recorded_at:
                return False
        elif self.retired_at is not None and (as_of is None or self.valid_to is None):
            return False
        when = as_of or utcnow()
        if self.valid_from is not None and self.valid_from > when:
            return False
        return self.valid_to is None or self.valid_to > when


class Evidence(BaseModel):
    """Where a fact came from. `confidence` is what the fact took from this evidence (None:
    the agreement), so that a fact's confidence can be recomputed when evidence is withdrawn;
    the mentions are how the text named subject and object, so that an entity merge can be
    undone evidence by evidence."""

    fact_id: str
    source_id: str
    chunk_id: str | None = None
    quote: str = ""
    agreement: float = Field(1.0, ge=0.0, le=1.0)
    model: str = ""
    extracted_at: datetime = Field(default_factory=utcnow)
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    subject_mention: str = ""
    object_mention: str = ""

    _tz = field_validator("extracted_at")(_aware)


class Change(BaseModel):
    """One line of the append-only change log."""

    seq: int
    at: datetime
    op: str
    kind: str
    item_id: str
    payload: dict[str, Any] = Field(default_factory=dict)


class StoreStats(BaseModel):
    sources: int
    chunks: int
    entities: int
    facts: int
    active_facts: int
    evidence: int
    changes: int
    schema_version: int
