"""Typed delta operations: the only way a playbook changes.

A curator (model or code) proposes these; `apply.py` validates and applies them. Text fields
are deliberately loose (no length limits) so that a bad op from a model becomes a rejection
with a reason instead of a parse error that would drop the whole batch.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class _Op(BaseModel):
    reason: str = ""  # the proposer's justification, kept in the history


class AddOp(_Op):
    op: Literal["ADD"] = "ADD"
    section: str
    content: str


class UpdateOp(_Op):
    op: Literal["UPDATE"] = "UPDATE"
    id: str
    content: str


class TagOp(_Op):
    """A reflector's verdict; `neutral` acknowledges the bullet and changes nothing."""

    op: Literal["TAG"] = "TAG"
    id: str
    tag: Literal["helpful", "harmful", "neutral"]
    count: int = Field(default=1, ge=1)


class MergeOp(_Op):
    """Fold `ids` into `keep` (one of them): counters summed, content given or the kept one's."""

    op: Literal["MERGE"] = "MERGE"
    ids: list[str]
    keep: str
    content: str | None = None


class RemoveOp(_Op):
    op: Literal["REMOVE"] = "REMOVE"
    id: str


DeltaOp = Annotated[AddOp | UpdateOp | TagOp | MergeOp | RemoveOp, Field(discriminator="op")]


class RejectReason(StrEnum):
    UNKNOWN_ID = "unknown_id"
    UNKNOWN_SECTION = "unknown_section"
    EMPTY_CONTENT = "empty_content"
    DUPLICATE_CONTENT = "duplicate_content"
    UNCHANGED_CONTENT = "unchanged_content"
    MERGE_TOO_FEW = "merge_too_few"
    MERGE_KEEP_NOT_LISTED = "merge_keep_not_listed"
    COPIES_TASK = "copies_task"


class Rejection(BaseModel):
    index: int  # position of the op in the batch
    op: DeltaOp
    reason: RejectReason
    detail: str
