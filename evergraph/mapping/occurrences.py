"""Which concept appears in which paper, when: read back from the store, as of any date.

The rows come from the `appears_in` facts (`concepts`), the denominators from the stored
sources (every paper, also those in which no concept was found), so the counts are the graph's
own, not a side file's. "As of" a date keeps the papers published by then; "since" a date
drops earlier ones: a few stray papers years before the bulk would otherwise stretch the
periods and, far from the others in time, weigh heavily on a trend's slope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from evergraph.graph.models import Entity, Source
from evergraph.graph.store.base import GraphStore
from evergraph.graph.views import facts_holding, records
from evergraph.mapping.concepts import APPEARS_IN
from evergraph.mapping.periods import Freq, period_of, period_range


@dataclass(frozen=True)
class Concept:
    id: str
    name: str
    type: str


@dataclass
class Occurrences:
    """Concepts per dated paper (undated papers have no period and are left out)."""

    concepts: dict[str, Concept] = field(default_factory=dict)  # entity id -> concept
    papers: dict[str, datetime] = field(default_factory=dict)  # paper id -> date
    by_paper: dict[str, set[str]] = field(default_factory=dict)  # paper id -> concept ids

    def periods(self, freq: Freq) -> list[str]:
        if not self.papers:
            return []
        return period_range(min(self.papers.values()), max(self.papers.values()), freq)

    def totals(self, freq: Freq) -> list[int]:
        """Papers per period (with or without concepts)."""
        per: dict[str, int] = defaultdict(int)
        for when in self.papers.values():
            per[period_of(when, freq)] += 1
        return [per[p] for p in self.periods(freq)]

    def counts(self, freq: Freq) -> dict[str, list[int]]:
        """Papers naming each concept, per period."""
        index = {p: i for i, p in enumerate(self.periods(freq))}
        found: dict[str, list[int]] = {}
        for paper, concepts in self.by_paper.items():
            slot = index[period_of(self.papers[paper], freq)]
            for c in concepts:
                found.setdefault(c, [0] * len(index))[slot] += 1
        return found

    def papers_in(self, period: str, freq: Freq) -> list[str]:
        return [p for p, when in self.papers.items() if period_of(when, freq) == period]


def read_occurrences(
    store: GraphStore, *, as_of: datetime | None = None, since: datetime | None = None
) -> Occurrences:
    """Papers published from `since` (default: the first) to `as_of` (default: now)."""
    found = Occurrences()
    for s in records(store, Source):
        when = s.published_at
        if when is None or (as_of is not None and when > as_of):
            continue
        if since is None or when >= since:
            found.papers[s.key or s.id] = when
    for f in facts_holding(store, as_of=as_of):
        paper = f.object_value or ""
        if f.predicate == APPEARS_IN and paper in found.papers:
            found.by_paper.setdefault(paper, set()).add(f.subject_id)
    for e in records(store, Entity):
        found.concepts[e.id] = Concept(e.id, e.name, e.type)
    return found
