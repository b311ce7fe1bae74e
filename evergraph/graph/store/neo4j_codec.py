"""How graph records map to Neo4j node properties, and back.

Times are integer microseconds since the epoch, as in the SQLite store (shared.py): exact, so
Cypher comparisons agree with `Fact.holds` to the microsecond, and free of the driver's
time-zone conversions. Embeddings stay lists of floats (what vector indexes read); dicts,
which Neo4j cannot store as a property, become JSON text. A None value is simply not stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from evergraph.graph.models import Change, Chunk, Entity, Evidence, Fact, FactStatus, Source
from evergraph.graph.store.shared import from_us, status_value, to_json, to_us

M = TypeVar("M", bound=BaseModel)

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class PropertyCodec(Generic[M]):
    """One record type as a node's property map: the model's fields, converted where needed."""

    model: type[M]
    encoders: Mapping[str, Convert] = field(default_factory=dict)
    decoders: Mapping[str, Convert] = field(default_factory=dict)

    def properties(self, record: M) -> dict[str, Any]:
        values = dict(vars(record))
        for name, encode in self.encoders.items():
            values[name] = encode(values[name])
        return values

    def record(self, properties: Mapping[str, Any]) -> M:
        """Only the model's fields are read: bookkeeping properties (keys, sequence numbers)
        stay in the database."""
        dec = self.decoders
        return self.model.model_validate(
            {
                name: dec[name](properties.get(name)) if name in dec else properties.get(name)
                for name in self.model.model_fields
            }
        )


def _or(default: Any) -> tuple[Convert, Convert]:
    """A field added after a store was written: nodes written before lack the property."""
    return (lambda v: v, lambda v: default if v is None else v)


def _json_or(default: Any) -> tuple[Convert, Convert]:
    return (to_json, lambda v: default if v is None else json.loads(v))


def _codec(
    model: type[M],
    *,
    times: tuple[str, ...] = (),
    json_fields: tuple[str, ...] = (),
    extra: Mapping[str, tuple[Convert, Convert]] | None = None,
) -> PropertyCodec[M]:
    pairs: dict[str, tuple[Convert, Convert]] = {
        **{name: (to_us, from_us) for name in times},
        **{name: (to_json, json.loads) for name in json_fields},
        **(extra or {}),
    }
    return PropertyCodec(
        model,
        {name: p[0] for name, p in pairs.items()},
        {name: p[1] for name, p in pairs.items()},
    )


SOURCE = _codec(
    Source,
    times=("published_at", "ingested_at"),
    json_fields=("metadata",),
    extra={"key": _or("")},
)
CHUNK = _codec(Chunk)
ENTITY = _codec(Entity, times=("first_seen", "last_seen"), extra={"merges": _json_or([])})
FACT = _codec(
    Fact,
    times=("valid_from", "valid_to", "recorded_at", "retired_at", "last_seen"),
    extra={"status": (status_value, FactStatus)},
)
EVIDENCE = _codec(
    Evidence,
    times=("extracted_at",),
    extra={"subject_mention": _or(""), "object_mention": _or("")},
)
CHANGE = _codec(Change, times=("at",), json_fields=("payload",))
BY_MODEL: dict[type[BaseModel], PropertyCodec[Any]] = {
    c.model: c for c in (SOURCE, CHUNK, ENTITY, FACT, EVIDENCE)
}
