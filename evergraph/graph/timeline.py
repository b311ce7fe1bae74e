"""Functional predicates (one object at a time per subject, e.g. "capital", "ceo_of") over time.

The records of one (subject, predicate) form a timeline of validity intervals. A claim dated d
(the document's date, its world time) is placed on it by these rules, whatever order the
documents arrive in:

- The record of the same object that holds at d (or starts at d) is the claim itself again:
  the caller reinforces it. Nothing else changes, except that a reinforced contested record
  that now leads its rival by more than `epsilon` wins (the rival is retired). If the next
  record after d is of the same object, it is the claim too, and now starts at d.
- Otherwise a new record holds from d. A record of another object that started earlier and
  still held at d is closed at d (`valid_to` = d): the newer claim wins, the older becomes
  history (retired, reason recorded, status superseded).
- A record of another object that starts LATER than d bounds the new one: the claim arrived
  late and becomes history itself, valid until the newer record's start. A late, older
  document never retires a newer fact.
- Same start date: the higher confidence wins by more than `epsilon`; the loser is retired with
  an empty interval (it never held). Closer than that is a tie: both are marked contested and
  both stay, for a reader (or a later document) to settle.

An unknown date (None) counts as earlier than every known one. Records withdrawn altogether
(retired with open validity) or that lost a same-date contest take no part. A loser is not
revived when it is reinforced later; its evidence and confidence still accrue.

Known limit: a record remembers its first date and, as `last_seen`, its latest one, not every
date it was stated on. A late claim dated inside a record that documents after that date
restated closes the record at the claim's date; the restatements stay as its evidence, not as
a new stretch (integrating in date order, as the batch builder does, never meets this).
"""

from __future__ import annotations

from datetime import datetime

from evergraph.graph.models import Fact, FactStatus


def object_key(f: Fact) -> str:
    return key_of(f.object_id, f.object_value)


def key_of(object_id: str | None, object_value: str | None) -> str:
    """An object, entity or literal, as one comparable string."""
    return f"entity:{object_id}" if object_id is not None else f"value:{object_value}"


def before(a: datetime | None, b: datetime | None) -> bool:
    """a strictly earlier than b, with None earlier than any date."""
    return b is not None and (a is None or a < b)


def covers(f: Fact, when: datetime | None) -> bool:
    return not before(when, f.valid_from) and (f.valid_to is None or before(when, f.valid_to))


def competing(f: Fact) -> bool:
    """Part of the timeline: live, or history with a real interval."""
    if f.retired_at is None:
        return True
    return f.valid_to is not None and before(f.valid_from, f.valid_to)


class Timeline:
    """The records of one (subject, predicate); `place` and `settle` change them in place and
    return the records they retired or marked contested."""

    def __init__(self, records: list[Fact], *, now: datetime, epsilon: float) -> None:
        self.records = records
        self.now = now
        self.epsilon = epsilon

    def _competing(self, *, besides: Fact | None = None) -> list[Fact]:
        return [f for f in self.records if f is not besides and competing(f)]

    def find(self, key: str, when: datetime | None) -> Fact | None:
        """The record of this object that holds at `when`, starts then, or starts next (with
        no other object in between: `extend` moves its start back to `when`)."""
        for f in self.records:
            if object_key(f) != key:
                continue
            lost = f.retired_at is not None and f.valid_to is not None and f.valid_to == when
            if lost and f.valid_from == when:
                return f  # lost a same-date contest: the claim is that record again
            if competing(f) and (covers(f, when) or f.valid_from == when):
                return f
        upcoming = [f for f in self._competing() if not before(f.valid_from, when)]
        if any(f.valid_from == when for f in upcoming):
            return None  # another object starts then: a same-date contest, not an extension
        later = [(f.valid_from, f.id, f) for f in upcoming if f.valid_from is not None]
        if not later:
            return None
        nxt = min(later, key=lambda t: (t[0], t[1]))[2]
        return nxt if object_key(nxt) == key else None

    def _retire(self, f: Fact, reason: str, valid_to: datetime | None) -> Fact:
        f.retired_at = self.now
        f.retire_reason = reason
        f.valid_to = valid_to
        if f.status is not FactStatus.CONTESTED:
            f.status = FactStatus.SUPERSEDED
        return f

    def _lose(self, loser: Fact, winner: Fact) -> Fact:
        loser.status = FactStatus.SUPERSEDED
        return self._retire(loser, f"weaker than {winner.id} on the same date", loser.valid_from)

    def _cut(self, f: Fact) -> list[Fact]:
        """Close the records of other objects that held when `f` starts."""
        when = f.valid_from
        return [
            self._retire(r, f"superseded by {f.id} from {when}", when)
            for r in self._competing(besides=f)
            if object_key(r) != object_key(f) and before(r.valid_from, when) and covers(r, when)
        ]

    def extend(self, f: Fact, when: datetime | None) -> list[Fact]:
        """`f` (found starting after `when`) holds from `when` on."""
        f.valid_from = when
        return self._cut(f)

    def place(self, new: Fact) -> list[Fact]:
        """Settle the conflicts of a new record (in `records`, starting at its valid_from)."""
        when, key = new.valid_from, object_key(new)
        changed: list[Fact] = []
        for rival in self._competing(besides=new):
            if object_key(rival) == key or rival.valid_from != when:
                continue
            lead = new.confidence - rival.confidence
            if abs(lead) <= self.epsilon:
                for f, other in ((new, rival), (rival, new)):
                    f.status = FactStatus.CONTESTED
                    f.retire_reason = f"contested by {other.id} (same date, confidence within "
                    f.retire_reason += f"{self.epsilon})"
                changed.append(rival)
            elif lead < 0:
                return [*changed, self._lose(new, rival)]
            else:
                changed.append(self._lose(rival, new))
        changed += self._cut(new)
        later = [
            (f.valid_from, f.id)
            for f in self._competing(besides=new)
            if f.valid_from is not None and before(when, f.valid_from)
        ]
        if later:
            start, nxt = min(later)
            reason = f"superseded by {nxt} from {start} (arrived late)"
            changed.append(self._retire(new, reason, start))
        return changed

    def settle(self, f: Fact) -> list[Fact]:
        """After `f` was reinforced: a contest it now leads by more than epsilon is won."""
        if f.status is not FactStatus.CONTESTED:
            return []
        rivals = [
            r
            for r in self.records
            if r.status is FactStatus.CONTESTED
            and r.valid_from == f.valid_from
            and object_key(r) != object_key(f)
            and competing(r)
        ]
        beaten = [r for r in rivals if f.confidence - r.confidence > self.epsilon]
        changed = [self._lose(r, f) for r in beaten]
        if len(beaten) == len(rivals):
            f.status = FactStatus.ACTIVE if f.retired_at is None else FactStatus.SUPERSEDED
            f.retire_reason = "" if f.retired_at is None else f.retire_reason
            changed.append(f)
        return changed
