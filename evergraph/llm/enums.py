"""Response schemas narrowed to the values that make sense right now.

Servers compile a response schema into a grammar (vLLM guided decoding, llama.cpp), so listing
the allowed values of a field as an enum stops a small model from writing a predicate the
schema lacks or an id the playbook does not have. Only the JSON schema is narrowed: validation
keeps the base type, so a server that ignores the enum yields a value the caller rejects with a
reason instead of a parse error that would drop the whole answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)


def with_enums(base: type[M], name: str, /, **allowed: Sequence[str]) -> type[M]:
    """`base` whose named `str` or `list[str]` fields list `allowed` values as an enum."""
    fields: dict[str, Any] = {}
    for field, values in allowed.items():
        info = base.model_fields[field]
        enum: dict[str, Any] = {"enum": list(values)}
        extra = (
            {"items": {"type": "string", **enum}} if get_origin(info.annotation) is list else enum
        )
        fields[field] = (
            info.annotation,
            FieldInfo.merge_field_infos(info, json_schema_extra=extra),
        )
    return create_model(name, __base__=base, **fields)
