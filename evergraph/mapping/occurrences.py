"""Which concept appears in which paper, when: read back from the store, as of any date.

A concept is a name, not an entity: the entities whose names differ only in case, punctuation
or plural are one concept (`names.plain_key`), whatever types the tagger gave them. Measured
on 1,000 astro-ph abstracts tagged by the 0.5B model: "dark energy" was stored as five entities
(typed field, dataset, object, property, instrument), "Black Holes" and "black holes" as two;
split so, 2 of 1,442 concepts of the first 450 papers reached the trend test's five papers,
joined 11.

The rows come from the `appears_in` facts (`concepts`), the denominators from the stored
sources (every paper, also those in which no concept was found), so the counts are the graph's
own, not a side file's. "As of" a date keeps the papers published by then; "since" a date
drops earlier ones: a few stray papers years before the bulk would otherwise stretch the
periods and, far from the others in time, weigh heavily on a trend's slope.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from evergraph.graph.models import Entity, Source
from evergraph.graph.names import plain_key
from evergraph.graph.store.base import GraphStore
from evergraph.graph.views import facts_holding, records
from evergraph.mapping.concepts import APPEARS_IN
from evergraph.mapping.periods import Freq, period_of, period_range


@dataclass(frozen=True)
class Concept:
    id: str  # the name's key
    name: str  # the commonest spelling
    type: str  # the commonest type


@dataclass
class Occurrences:
    """Concepts per dated paper (undated papers have no period and are left out)."""

    concepts: dict[str, Concept] = field(default_factory=dict)  # concept id -> concept
    key_of: dict[str, str] = field(default_factory=dict)  # entity id -> concept id
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
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    types: dict[str, Counter[str]] = defaultdict(Counter)
    for e in records(store, Entity):
        key = found.key_of[e.id] = plain_key(e.name) or e.id
        spellings[key][e.name] += max(e.mentions, 1)
        types[key][e.type] += max(e.mentions, 1)
    for key, names in spellings.items():
        found.concepts[key] = Concept(key, _commonest(names), _commonest(types[key]))
    for f in facts_holding(store, as_of=as_of):
        paper = f.object_value or ""
        if f.predicate == APPEARS_IN and paper in found.papers:
            concept = found.key_of.get(f.subject_id, f.subject_id)
            found.by_paper.setdefault(paper, set()).add(concept)
    return found


def _commonest(counts: Counter[str]) -> str:
    """The most counted, ties to the first in sort order (the same on every run)."""
    return min(counts, key=lambda k: (-counts[k], k))
