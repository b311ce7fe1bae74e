"""How graph records and as-of/full-text queries map onto the SQLite schema.

Times become INTEGER microseconds since the epoch (shared.py: exact, so SQL comparisons agree
with `Fact.holds`), embeddings float32 BLOBs (4 bytes a dimension; values keep float32
precision), lists and dicts JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import itemgetter
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel

from evergraph.graph.ids import evidence_digest_of
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, FactStatus, Source
from evergraph.graph.store.shared import (
    from_us,
    holds_predicate,
    query_terms,
    status_value,
    to_json,
    to_us,
)

M = TypeVar("M", bound=BaseModel)


def _to_blob(vector: Sequence[float] | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype="<f4").tobytes()


def _from_blob(blob: bytes | None) -> list[float] | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4").tolist()


@dataclass(frozen=True)
class Codec(Generic[M]):
    """How one record type maps to a table row: column order and per-column conversions."""

    model: type[M]
    table: str
    columns: tuple[str, ...]
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, encoder)
    decoders: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, decoder)

    @property
    def select(self) -> str:
        return ", ".join(self.columns)

    @cached_property
    def _fields(self) -> itemgetter[tuple[Any, ...]]:
        return itemgetter(*self.columns)

    def row(self, record: M) -> list[Any]:
        """Bulk writes call this per record: one C-level fetch of all fields, then only the
        columns that need converting (about twice as fast as converting column by column)."""
        values = list(self._fields(vars(record)))
        for i, encode in self.encoders:
            values[i] = encode(values[i])
        return values

    def record(self, row: Sequence[Any]) -> M:
        """Decoded by column index, as `row` encodes (a batch reads back thousands of facts)."""
        values = list(row)
        for i, decode in self.decoders:
            values[i] = decode(values[i])
        return self.model.model_validate(dict(zip(self.columns, values, strict=True)))

    def upsert_sql(
        self, conflict: str = "id", update: Sequence[str] | None = None, extra: Sequence[str] = ()
    ) -> str:
        """INSERT .. ON CONFLICT DO UPDATE, never INSERT OR REPLACE: REPLACE deletes the old
        row first, which would fire ON DELETE CASCADE and drop dependent records. `extra`
        columns, not fields of the record, follow its columns in each row."""
        cols = [c for c in self.columns if c != "id"] if update is None else update
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        names = [*self.columns, *extra]
        marks = ", ".join("?" for _ in names)
        return (
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        )


def codec(
    model: type[M],
    table: str,
    *,
    times: Sequence[str] = (),
    json_cols: Sequence[str] = (),
    vectors: Sequence[str] = (),
    extra: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] | None = None,
) -> Codec[M]:
    """Columns are the model's fields, in order: a field added to a model without a schema
    migration fails every write loudly instead of being dropped."""
    pairs: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        **{c: (to_us, from_us) for c in times},
        **{c: (to_json, json.loads) for c in json_cols},
        **{c: (_to_blob, _from_blob) for c in vectors},
        **(extra or {}),
    }
    columns = tuple(model.model_fields)
    return Codec(
        model,
        table,
        columns,
        tuple((columns.index(c), p[0]) for c, p in pairs.items()),
        tuple((columns.index(c), p[1]) for c, p in pairs.items()),
    )


SOURCES = codec(Source, "sources", times=("published_at", "ingested_at"), json_cols=("metadata",))
CHUNKS = codec(Chunk, "chunks", vectors=("embedding",))
ENTITIES = codec(
    Entity,
    "entities",
    times=("first_seen", "last_seen"),
    json_cols=("aliases", "merges"),
    vectors=("embedding",),
)
FACTS = codec(
    Fact,
    "facts",
    times=("valid_from", "valid_to", "recorded_at", "retired_at", "last_seen"),
    extra={"status": (status_value, FactStatus)},
)
EVIDENCE = codec(Evidence, "evidence", times=("extracted_at",))


def chunk_hit_columns(alias: str) -> str:
    """CHUNKS's columns as a search reads them: the embedding as NULL. No reader of a hit
    needs its vector, and decoding 384 floats per hit took 5-8 ms of a 60-70 ms hybrid query
    at 100k chunks (bench_retrieval)."""
    return ", ".join("NULL" if c == "embedding" else f"{alias}.{c}" for c in CHUNKS.columns)


UPSERT_SOURCE = SOURCES.upsert_sql()
UPSERT_CHUNK = CHUNKS.upsert_sql()
UPSERT_ENTITY = ENTITIES.upsert_sql()
UPSERT_FACT = FACTS.upsert_sql()
_EVIDENCE_KEY = ("fact_id", "source_id", "chunk_id", "quote", "model")


def evidence_row(e: Evidence) -> list[Any]:
    """A row of ADD_EVIDENCE: the record's columns, then its key."""
    row = EVIDENCE.row(e)
    row.append(evidence_digest_of(e))
    return row


ADD_EVIDENCE = EVIDENCE.upsert_sql(  # same extraction again: refresh, do not duplicate
    "key", [c for c in EVIDENCE.columns if c not in _EVIDENCE_KEY], extra=["key"]
)
REMOVE_EVIDENCE = "DELETE FROM evidence WHERE key = ?"
LOG = "INSERT INTO changes (at, op, kind, item_id, payload) VALUES (?, ?, ?, ?, ?)"


def holds_sql(as_of: datetime | None, recorded_at: datetime | None) -> tuple[str, dict[str, Any]]:
    """`Fact.holds(as_of, recorded_at)` as a WHERE clause over the facts table."""
    return holds_predicate(as_of, recorded_at, field="", param=":")


def fts_query(text: str) -> str:
    """User text as an FTS5 query that cannot be a syntax error: an OR of quoted terms.

    Terms are runs of letters and digits, so they never contain a double quote and FTS5
    operators (AND, NEAR, *, ^, :) become plain words.
    """
    return " OR ".join(f'"{t}"' for t in query_terms(text))
