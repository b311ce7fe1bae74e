"""The playbook data model: named playbooks of sectioned bullets with stable ids.

Bullets are immutable records; every change goes through a delta operation (`deltas.py`)
so that it lands in the history. Ids come from a per-playbook counter and are never reused,
which keeps old history entries and generator citations unambiguous.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID_PATTERN = r"^[a-z0-9]+-\d{5,}$"


def normalise(content: str) -> str:
    """The form compared for duplicates: case, spacing and trailing punctuation do not count."""
    return " ".join(content.casefold().split()).rstrip(".!;: ")


def bullet_id(section: str, number: int) -> str:
    """`str-00012` for bullet 12 of section "strategies": readable, and unique by number."""
    prefix = re.sub(r"[^a-z0-9]", "", section.casefold())[:3] or "b"
    return f"{prefix}-{number:05d}"


def id_number(bid: str) -> int:
    """The creation counter inside an id; bullets are kept in this order."""
    return int(bid.rsplit("-", 1)[1])


class Bullet(BaseModel):
    """One strategy, rule or insight, with the reflector's verdicts counted."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=_ID_PATTERN)
    section: str = Field(min_length=1)
    content: str = Field(min_length=1)
    helpful: int = Field(default=0, ge=0)
    harmful: int = Field(default=0, ge=0)
    created_at: datetime
    updated_at: datetime
    reflection_id: str | None = None  # the reflection that proposed it
    # Cached vector of `content`; never rendered, dropped when the content changes.
    embedding: list[float] | None = Field(default=None, repr=False)

    @property
    def uses(self) -> int:
        return self.helpful + self.harmful

    @property
    def usefulness(self) -> float:
        """Laplace-smoothed share of helpful verdicts: 0.5 for an untested bullet."""
        return (self.helpful + 1) / (self.uses + 2)

    def same_record(self, other: Bullet) -> bool:
        """Equal apart from the cached embedding, which is derived data."""
        return self.model_dump(exclude={"embedding"}) == other.model_dump(exclude={"embedding"})


class Playbook(BaseModel):
    """A named playbook (one per agent, app or namespace) with its declared sections.

    `version` is the seq of the last history entry applied; `next_id` numbers the next bullet.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    sections: list[str] = Field(min_length=1)
    bullets: list[Bullet] = Field(default_factory=list)
    version: int = Field(default=0, ge=0)
    next_id: int = Field(default=1, ge=1)

    @field_validator("sections")
    @classmethod
    def _distinct_sections(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v) or any(not s.strip() for s in v):
            raise ValueError("sections must be distinct and non-empty")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        ids = [b.id for b in self.bullets]
        if len(set(ids)) != len(ids):
            raise ValueError("bullet ids must be unique")
        if any(b.section not in self.sections for b in self.bullets):
            raise ValueError("every bullet must belong to a declared section")
        if ids and max(id_number(i) for i in ids) >= self.next_id:
            raise ValueError("next_id must exceed every bullet number")
        return self

    def get(self, bid: str) -> Bullet | None:
        return next((b for b in self.bullets if b.id == bid), None)

    def in_section(self, section: str) -> list[Bullet]:
        return [b for b in self.bullets if b.section == section]
