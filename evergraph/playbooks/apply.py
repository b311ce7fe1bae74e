"""Validate and apply a batch of delta operations: a pure function of its inputs.

Ops run in order, each against the state the previous ones left; each one either applies
fully or is rejected with a reason, and a bad op never raises. The same playbook, ops and
time always give the same result, so a batch can be replayed and audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from difflib import SequenceMatcher
from typing import NamedTuple

from evergraph.errors import UsageError
from evergraph.playbooks.deltas import (
    AddOp,
    DeltaOp,
    MergeOp,
    Rejection,
    RejectReason,
    RemoveOp,
    TagOp,
    UpdateOp,
)
from evergraph.playbooks.history import HistoryEntry, Revision, snapshot, swap
from evergraph.playbooks.models import Bullet, Playbook, bullet_id, id_number, normalise

# A rule may quote a task (a tag name, a formula), not carry a page of it: the 1.5B curator
# made a FiNER task's 26-tag option list (1,131 characters) a bullet, shown on every later task.
COPY_LIMIT = 120  # characters of the task an ADD/UPDATE/MERGE content may repeat verbatim


class DeltaResult(Revision):
    applied: list[DeltaOp]
    rejected: list[Rejection]


class _Reject(NamedTuple):
    reason: RejectReason
    detail: str


_Change = tuple[list[Bullet], list[Bullet]]  # touched bullets before, after


def apply_deltas(
    playbook: Playbook,
    ops: Sequence[DeltaOp],
    *,
    now: datetime,
    origin: str = "curator",
    reflection_id: str | None = None,
    task: str = "",
) -> DeltaResult:
    """Apply `ops` to `playbook` at time `now`; new bullets record `reflection_id`; content
    that copies more than `COPY_LIMIT` characters of `task` (the ops' source) is rejected."""
    if now.tzinfo is None:
        raise UsageError("apply_deltas needs an aware datetime", fix="use datetime.now(UTC)")
    task = " ".join(task.split())  # whitespace-collapsed once, as `_copied` compares it
    state = playbook
    applied: list[DeltaOp] = []
    rejected: list[Rejection] = []
    entries: list[HistoryEntry] = []
    for index, op in enumerate(ops):
        change = _copied(op, task) or _change(state, op, now, reflection_id)
        if isinstance(change, _Reject):
            rejected.append(
                Rejection(index=index, op=op, reason=change.reason, detail=change.detail)
            )
            continue
        applied.append(op)
        before, after = change
        if not before and not after:
            continue  # a neutral tag: accepted, nothing to record
        seq = state.version + 1
        entries.append(
            HistoryEntry(
                seq=seq,
                at=now,
                op=op,
                before=[snapshot(b) for b in before],
                after=[snapshot(b) for b in after],
                origin=origin,
                reason=op.reason,
            )
        )
        next_id = max([state.next_id, *(id_number(b.id) + 1 for b in after)])
        state = state.model_copy(
            update={
                "bullets": swap(state.bullets, before, after),
                "version": seq,
                "next_id": next_id,
            }
        )
    return DeltaResult(playbook=state, entries=entries, applied=applied, rejected=rejected)


def _change(
    pb: Playbook, op: DeltaOp, now: datetime, reflection_id: str | None
) -> _Change | _Reject:
    match op:
        case AddOp():
            return _add(pb, op, now, reflection_id)
        case UpdateOp():
            return _update(pb, op, now)
        case TagOp():
            return _tag(pb, op, now)
        case MergeOp():
            return _merge(pb, op, now)
        case RemoveOp():
            found = _find(pb, [op.id])
            return found if isinstance(found, _Reject) else (found, [])


def _copied(op: DeltaOp, task: str) -> _Reject | None:
    content = op.content if isinstance(op, AddOp | UpdateOp | MergeOp) else None
    if not (task and content):
        return None
    matcher = SequenceMatcher(None, " ".join(content.split()), task, autojunk=False)
    run = matcher.find_longest_match().size
    if run <= COPY_LIMIT:
        return None
    return _Reject(RejectReason.COPIES_TASK, f"repeats {run} characters of the task verbatim")


def _find(pb: Playbook, ids: Sequence[str]) -> list[Bullet] | _Reject:
    by_id = {b.id: b for b in pb.bullets}
    missing = [i for i in ids if i not in by_id]
    if missing:
        return _Reject(RejectReason.UNKNOWN_ID, f"no bullet {', '.join(missing)}")
    return [by_id[i] for i in ids]


def _content_problem(pb: Playbook, content: str, ignore: set[str]) -> _Reject | None:
    """Empty content, or content another bullet (outside `ignore`) already says."""
    key = normalise(content)
    if not key:
        return _Reject(RejectReason.EMPTY_CONTENT, "content is empty")
    twin = next((b for b in pb.bullets if b.id not in ignore and normalise(b.content) == key), None)
    if twin is not None:
        return _Reject(RejectReason.DUPLICATE_CONTENT, f"{twin.id} already says this")
    return None


def _add(pb: Playbook, op: AddOp, now: datetime, reflection_id: str | None) -> _Change | _Reject:
    if op.section not in pb.sections:
        return _Reject(RejectReason.UNKNOWN_SECTION, f"no section {op.section!r}")
    problem = _content_problem(pb, op.content, set())
    if problem:
        return problem
    new = Bullet(
        id=bullet_id(op.section, pb.next_id),
        section=op.section,
        content=op.content.strip(),
        created_at=now,
        updated_at=now,
        reflection_id=reflection_id,
    )
    return [], [new]


def _update(pb: Playbook, op: UpdateOp, now: datetime) -> _Change | _Reject:
    found = _find(pb, [op.id])
    if isinstance(found, _Reject):
        return found
    old = found[0]
    problem = _content_problem(pb, op.content, {old.id})
    if problem:
        return problem
    if normalise(op.content) == normalise(old.content):
        return _Reject(RejectReason.UNCHANGED_CONTENT, f"{old.id} already says this")
    return [old], [_rewrite(old, op.content, now)]


def _tag(pb: Playbook, op: TagOp, now: datetime) -> _Change | _Reject:
    found = _find(pb, [op.id])
    if isinstance(found, _Reject):
        return found
    if op.tag == "neutral":
        return [], []
    old = found[0]
    counts = {"helpful": old.helpful, "harmful": old.harmful}
    counts[op.tag] += op.count
    return [old], [old.model_copy(update={**counts, "updated_at": now})]


def _merge(pb: Playbook, op: MergeOp, now: datetime) -> _Change | _Reject:
    ids = list(dict.fromkeys(op.ids))
    if len(ids) < 2:
        return _Reject(RejectReason.MERGE_TOO_FEW, "a merge needs at least two distinct ids")
    if op.keep not in ids:
        return _Reject(RejectReason.MERGE_KEEP_NOT_LISTED, f"{op.keep} is not among {ids}")
    found = _find(pb, ids)
    if isinstance(found, _Reject):
        return found
    if op.content is not None:
        problem = _content_problem(pb, op.content, set(ids))
        if problem:
            return problem
    kept = next(b for b in found if b.id == op.keep)
    if op.content is not None and op.content.strip() != kept.content:
        kept = _rewrite(kept, op.content, now)
    merged = kept.model_copy(
        update={
            "helpful": sum(b.helpful for b in found),
            "harmful": sum(b.harmful for b in found),
            "updated_at": now,
        }
    )
    return found, [merged]


def _rewrite(old: Bullet, content: str, now: datetime) -> Bullet:
    """New content invalidates the cached embedding."""
    return old.model_copy(update={"content": content.strip(), "updated_at": now, "embedding": None})
