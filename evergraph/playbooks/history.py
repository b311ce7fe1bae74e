"""The append-only history of a playbook, and what it makes possible: revert and diff.

Each entry keeps the touched bullets before and after one operation, so undoing it is
swapping them back. A revert is itself appended (origin "revert"), never an erasure, so the
trail stays complete and a revert can be reverted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from evergraph.errors import UsageError
from evergraph.playbooks.deltas import DeltaOp
from evergraph.playbooks.models import Bullet, Playbook, id_number


class HistoryEntry(BaseModel):
    seq: int = Field(ge=1)  # the playbook's version once this entry is applied
    at: datetime
    op: DeltaOp
    before: list[Bullet]  # touched bullets as they were (none for ADD); embeddings dropped
    after: list[Bullet]  # as they became (none for REMOVE)
    origin: str  # who proposed it: "curator", "refine", "revert", ...
    reason: str = ""
    reverts: int | None = None  # seq of the entry this one undoes


class Revision(BaseModel):
    """A new playbook state and the history entries that lead to it."""

    playbook: Playbook
    entries: list[HistoryEntry]


class BulletChange(BaseModel):
    before: Bullet
    after: Bullet


class PlaybookDiff(BaseModel):
    added: list[Bullet]
    removed: list[Bullet]
    changed: list[BulletChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def snapshot(bullet: Bullet) -> Bullet:
    """The bullet as history keeps it: embeddings are derived and would bloat the log."""
    return bullet.model_copy(update={"embedding": None})


def swap(bullets: Sequence[Bullet], old: Sequence[Bullet], new: Sequence[Bullet]) -> list[Bullet]:
    """Bullets with `old` taken out and `new` put in, in creation (id) order."""
    gone = {b.id for b in old}
    kept = [b for b in bullets if b.id not in gone]
    return sorted([*kept, *new], key=lambda b: id_number(b.id))


def revert(
    playbook: Playbook, history: Sequence[HistoryEntry], to_seq: int, *, now: datetime
) -> Revision:
    """The playbook's bullets as they were at version `to_seq`, reached by undoing the later
    entries newest first; each undo is appended as a new entry."""
    last = history[-1].seq if history else 0
    if last != playbook.version:
        raise UsageError(
            f"history ends at {last} but playbook "
            f"{playbook.name!r} is at version {playbook.version}",
            fix="pass the full history of this playbook",
        )
    if not 0 <= to_seq <= playbook.version:
        raise UsageError(f"cannot revert to {to_seq}: versions run from 0 to {playbook.version}")
    bullets = list(playbook.bullets)
    entries: list[HistoryEntry] = []
    for entry in reversed([e for e in history if e.seq > to_seq]):
        current = {b.id: b for b in bullets}
        if any(b.id not in current or not b.same_record(current[b.id]) for b in entry.after):
            raise UsageError(f"history entry {entry.seq} does not match playbook {playbook.name!r}")
        bullets = swap(bullets, entry.after, entry.before)
        entries.append(
            HistoryEntry(
                seq=playbook.version + len(entries) + 1,
                at=now,
                op=entry.op,
                before=entry.after,
                after=entry.before,
                origin="revert",
                reason=f"revert to version {to_seq}",
                reverts=entry.seq,
            )
        )
    state = playbook.model_copy(
        update={"bullets": bullets, "version": playbook.version + len(entries)}
    )
    return Revision(playbook=state, entries=entries)


def diff(a: Playbook, b: Playbook) -> PlaybookDiff:
    """Bullets added, removed and changed from `a` to `b`, matched by id, embeddings ignored."""
    old = {x.id: x for x in a.bullets}
    new = {x.id: x for x in b.bullets}
    return PlaybookDiff(
        added=[x for x in b.bullets if x.id not in old],
        removed=[x for x in a.bullets if x.id not in new],
        changed=[
            BulletChange(before=old[x.id], after=x)
            for x in b.bullets
            if x.id in old and not x.same_record(old[x.id])
        ],
    )
