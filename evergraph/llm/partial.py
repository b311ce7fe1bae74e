"""Keeping the complete part of an answer cut off at max_tokens.

A schema whose top-level lists hold independent items (facts, entities) loses nothing by
stopping early except the items it did not reach; dropping the whole sample would throw away
the ones it did. Small local models write long JSON, so on a 2-core machine most extraction
samples end at the token limit: without salvage their agreement counts would all be zero.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

_MAX_TRIMS = 64


class ItemLists(BaseModel):
    """Marker base: this schema's list items are independent, so a cut-off sample keeps its
    complete leading items (the incomplete last one, and any field it lacks, are dropped)."""


T = TypeVar("T", bound=BaseModel)


def salvage(text: str, schema: type[T]) -> T | None:
    """The schema's value from the complete items of a truncated JSON `text`, or None."""
    if not issubclass(schema, ItemLists):
        return None
    try:
        data = from_json(text, allow_partial=True)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for name, field in schema.model_fields.items():  # a list it did not reach is empty
        if name not in data and get_origin(field.annotation) is list:
            data[name] = []
    for _ in range(_MAX_TRIMS):
        try:
            return schema.model_validate(data)
        except ValidationError as e:
            if not _drop_failing_items(data, e):
                return None
    return None


def _drop_failing_items(data: dict[str, Any], error: ValidationError) -> bool:
    """Remove every top-level list item an error points into; False when an error is elsewhere."""
    failing: dict[str, set[int]] = {}
    for err in error.errors(include_url=False):
        loc = err["loc"]
        if len(loc) < 2 or not isinstance(loc[0], str) or not isinstance(loc[1], int):
            return False
        if not isinstance(data.get(loc[0]), list):
            return False
        failing.setdefault(loc[0], set()).add(loc[1])
    for field, indices in failing.items():
        data[field] = [item for i, item in enumerate(data[field]) if i not in indices]
    return True
