"""An optional user schema: entity types, relation types with domain/range, functional ones.

The extractor shows it to the model and rejects triples that break it; the constructor uses
`functional` to decide when a new object retires the old one. Without a schema anything goes
and no predicate is functional.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from evergraph.errors import UsageError


class RelationType(BaseModel):
    name: str = Field(min_length=1)
    domain: str | None = None  # subject entity type; None: any
    range: str | None = None  # object entity type; "literal" for a value; None: any
    functional: bool = False  # one object at a time per subject (e.g. "ceo_of", "capital")
    description: str = ""


class GraphSchema(BaseModel):
    entity_types: list[str] = Field(default_factory=list)  # empty: any type
    type_descriptions: dict[str, str] = Field(default_factory=dict)  # shown to the model
    relations: list[RelationType] = Field(default_factory=list)  # empty: any predicate

    @model_validator(mode="after")
    def _types_known(self) -> GraphSchema:
        if self.entity_types:
            known = {*self.entity_types, "literal"}
            for r in self.relations:
                for t in (r.domain, r.range):
                    if t is not None and t not in known:
                        raise ValueError(f"relation {r.name!r} names unknown entity type {t!r}")
        return self

    def relation(self, name: str) -> RelationType | None:
        return next((r for r in self.relations if r.name == name), None)

    def is_functional(self, predicate: str) -> bool:
        r = self.relation(predicate)
        return r is not None and r.functional


def concept_types(data: object) -> object:
    """A JSON object of `{type: description}` (kg-for-science's concept schema) as a schema of
    those entity types and any predicate; anything else unchanged."""
    if isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        return {"entity_types": list(data), "type_descriptions": data}
    return data


def load_schema(path: Path) -> GraphSchema:
    """Read a schema from JSON (`GraphSchema`'s fields, or `concept_types`' shape); a clear
    UsageError for a missing or malformed file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return GraphSchema.model_validate(concept_types(data))
    except FileNotFoundError:
        raise UsageError(
            f"schema file {path} does not exist", fix="pass an existing file"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as e:
        raise UsageError(
            f"schema file {path} is not a valid schema: {e}",
            fix="see GraphSchema in evergraph/graph/schema.py",
        ) from None
