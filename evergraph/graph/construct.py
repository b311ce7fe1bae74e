"""The constructor: one document's candidate facts into the graph, in ONE store transaction.

1. Content stored already (same source id): nothing to do; the report says `skipped`.
2. The source and its chunks are written (chunks without an embedding are embedded).
3. Older versions of the same document (same key) are superseded: their evidence is withdrawn,
   their source and chunks deleted, and the facts they supported recounted from the evidence
   left. Facts that this version does not assert again and that have no evidence left are
   retired ("source superseded"), never deleted.
4. Mentions are resolved to entities (`resolve.py`).
5. Each triple (after resolution) is asserted once per document, however many quotes support
   it: a recurring fact gains support + 1 and confidence by noisy-OR (`confidence.py`), with
   last_seen moved up; a new fact starts at the candidate's confidence. Functional predicates
   go through the timeline rules (`timeline.py`): newer wins, a late older document becomes
   history, same-date ties are contested. Every candidate becomes evidence (source, chunk,
   quote, agreement, model, time, and how the text named subject and object).
6. Entities, facts and evidence are written in batches, and each retirement is logged with its
   reason (`retire_fact`).

Time: a fact's `valid_from` is its document's date (world time; a non-functional fact's start
moves earlier when an earlier document states it too), `recorded_at`/`retired_at` are `now`
(system time). `last_seen` is the latest document date that stated it (`now` for undated
documents). Callers integrate documents in date order, but any order gives the same timelines.

Ids are deterministic (`ids.py`), so integrating again finds what the first run wrote; the
per-document work is a handful of batched store calls, not a query per fact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph import ids
from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.confidence import CONFIDENCE_CAP, check_cap, noisy_or, recounted
from evergraph.graph.models import Chunk, Evidence, Fact, FactStatus, Source, utcnow
from evergraph.graph.resolve import Resolution, Resolver, ResolveSettings
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.base import GraphStore
from evergraph.graph.timeline import Timeline, before, key_of, object_key

SUPERSEDED_SOURCE = "source superseded"


@dataclass(frozen=True)
class IntegrateSettings:
    confidence_cap: float = CONFIDENCE_CAP
    tie_epsilon: float = 0.05  # same-date confidences this close are a tie: contested
    resolve: ResolveSettings = field(default_factory=ResolveSettings)  # without a Resolver


@dataclass
class IntegrationReport:
    """What integrating changed; reports add up (`a + b`) for a batch summary."""

    documents: int = 0
    skipped: int = 0  # the same content was integrated before
    sources_superseded: int = 0  # older versions of the document replaced
    entities_created: int = 0
    merges: int = 0  # mentions attached to an existing entity by alias, fuzzy or embedding
    facts_created: int = 0
    facts_reinforced: int = 0
    retired: int = 0
    contested: int = 0
    evidence_added: int = 0

    def __add__(self, other: IntegrationReport) -> IntegrationReport:
        return IntegrationReport(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass
class _Assertion:
    """One triple as this document states it, with every candidate that stated it."""

    subject_id: str
    predicate: str
    object_id: str | None
    object_value: str | None
    candidates: list[CandidateFact] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return max(c.confidence for c in self.candidates)

    @cached_property
    def base_id(self) -> str:
        return ids.fact_id(self.subject_id, self.predicate, self.object_id, self.object_value)

    @property
    def object_key(self) -> str:
        return key_of(self.object_id, self.object_value)


class _Ledger:
    """The facts one integration reads and changes, each held once, written at the end."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.facts: dict[str, Fact] = {}
        self.loaded: dict[str, tuple[object, ...]] = {}  # id -> retirement state as read
        self.changed: dict[str, Fact] = {}
        self._histories: dict[tuple[str, str], list[Fact]] = {}

    @staticmethod
    def _state(f: Fact) -> tuple[object, ...]:
        return f.retired_at, f.status, f.valid_to, f.retire_reason

    def load(self, facts: Sequence[Fact]) -> list[Fact]:
        for f in facts:
            if f.id not in self.facts:
                self.facts[f.id] = f
                self.loaded[f.id] = self._state(f)
        return [self.facts[f.id] for f in facts]

    def prefetch(self, pairs: set[tuple[str, str]]) -> None:
        """Read the records of these (subject, predicate) pairs, all in one query."""
        wanted = sorted(pairs - self._histories.keys())
        for key in wanted:
            self._histories[key] = []
        for f in self.load(self.store.facts_by_subject(wanted)) if wanted else []:
            self._histories[(f.subject_id, f.predicate)].append(f)

    def history(self, subject_id: str, predicate: str) -> list[Fact]:
        """Every record of (subject, predicate), whatever its time and status."""
        self.prefetch({(subject_id, predicate)})
        return self._histories[(subject_id, predicate)]

    def add(self, fact: Fact) -> None:
        self.facts[fact.id] = fact
        self.touch(fact)
        history = self._histories.get((fact.subject_id, fact.predicate))
        if history is not None:
            history.append(fact)

    def touch(self, *facts: Fact) -> None:
        self.changed.update((f.id, f) for f in facts)

    def retirements(self) -> list[Fact]:
        return [
            f
            for f in self.changed.values()
            if f.retired_at is not None and self.loaded.get(f.id) != self._state(f)
        ]

    def newly_contested(self) -> int:
        return sum(
            1
            for f in self.changed.values()
            if f.status is FactStatus.CONTESTED
            and (f.id not in self.loaded or self.loaded[f.id][1] is not FactStatus.CONTESTED)
        )


class _Document:
    """Integration of one document: the rules above, over a ledger."""

    def __init__(
        self,
        store: GraphStore,
        source: Source,
        schema: GraphSchema,
        settings: IntegrateSettings,
        now: datetime,
    ) -> None:
        self.store = store
        self.source = source
        self.schema = schema
        self.cap = check_cap(settings.confidence_cap)
        self.epsilon = settings.tie_epsilon
        self.now = now
        self.when = source.published_at
        self.seen = source.published_at or now
        self.ledger = _Ledger(store)
        self.report = IntegrationReport(documents=1)

    def supersede_older_versions(self) -> list[Fact]:
        """Withdraw what older versions of this document said; returns the facts they
        supported, recounted (possibly without any evidence left)."""
        supported: set[str] = set()
        for old in self.store.find_sources(self.source.key):
            if old.id == self.source.id:
                continue
            evidence = self.store.evidence_from(old.id)
            self.store.remove_evidence(evidence)
            self.store.delete_source(old.id)  # its chunks; its facts have no evidence from it
            supported.update(e.fact_id for e in evidence)
            self.report.sources_superseded += 1
        facts = self.ledger.load(self.store.get_facts(sorted(supported)))
        for f in facts:
            counted = recounted(f, self.store.evidence_for(f.id), cap=self.cap)
            f.support, f.confidence = counted.support, counted.confidence
            self.ledger.touch(f)
        return facts

    def assertions(
        self, extraction: DocumentExtraction, resolution: Resolution
    ) -> list[_Assertion]:
        found: dict[tuple[str, str, str | None, str | None], _Assertion] = {}
        for c in extraction.facts:
            obj = None if c.object is None else resolution.id_of(c.object)
            value = None if c.object_value is None else " ".join(c.object_value.split())
            key = (resolution.id_of(c.subject), c.predicate, obj, value)
            found.setdefault(key, _Assertion(*key)).candidates.append(c)
        return list(found.values())

    def _reinforce(self, f: Fact, a: _Assertion, *, functional: bool) -> None:
        f.support += 1
        f.confidence = noisy_or([f.confidence, a.confidence], cap=self.cap)
        f.last_seen = max(f.last_seen or self.seen, self.seen)
        when, start = self.when, f.valid_from
        if not functional and when is not None and start is not None and when < start:
            f.valid_from = when  # stated by an earlier document: it held since then
        self.ledger.touch(f)
        self.report.facts_reinforced += 1

    def _new(self, a: _Assertion, number: int) -> Fact:
        f = Fact(
            id=ids.record_id(a.base_id, number),
            subject_id=a.subject_id,
            predicate=a.predicate,
            object_id=a.object_id,
            object_value=a.object_value,
            confidence=min(a.confidence, self.cap),
            valid_from=self.when,
            recorded_at=self.now,
            last_seen=self.seen,
        )
        self.ledger.add(f)
        self.report.facts_created += 1
        return f

    def functional(self, a: _Assertion) -> bool:
        return self.schema.is_functional(a.predicate)

    def assert_fact(self, a: _Assertion) -> Fact:
        if self.functional(a):
            timeline = Timeline(
                self.ledger.history(a.subject_id, a.predicate), now=self.now, epsilon=self.epsilon
            )
            found = timeline.find(a.object_key, self.when)
            if found is not None:
                if before(self.when, found.valid_from):
                    self.ledger.touch(*timeline.extend(found, self.when))
                self._reinforce(found, a, functional=True)
                self.ledger.touch(*timeline.settle(found))
                return found
            same = sum(1 for f in timeline.records if object_key(f) == a.object_key)
            new = self._new(a, same)
            self.ledger.touch(*timeline.place(new))
            return new
        base = self.ledger.facts.get(a.base_id)
        if base is None:  # no record of the triple at all
            return self._new(a, 0)
        if base.retired_at is not None:  # withdrawn: is another record of it live?
            records = [
                f
                for f in self.ledger.history(a.subject_id, a.predicate)
                if object_key(f) == a.object_key
            ]
            base = next((f for f in records if f.retired_at is None), None)
            if base is None:
                return self._new(a, len(records))
        self._reinforce(base, a, functional=False)
        return base

    def evidence(self, fact: Fact, a: _Assertion, model: str) -> list[Evidence]:
        return [
            Evidence(
                fact_id=fact.id,
                source_id=self.source.id,
                chunk_id=c.chunk_id,
                quote=c.quote,
                agreement=c.agreement,
                model=model,
                extracted_at=self.now,
                confidence=c.confidence,
                subject_mention=c.subject.name,
                object_mention="" if c.object is None else c.object.name,
            )
            for c in a.candidates
        ]

    def retire_orphans(self, facts: Sequence[Fact]) -> None:
        for f in facts:
            if f.support == 0 and f.retired_at is None:
                f.retired_at, f.retire_reason = self.now, SUPERSEDED_SOURCE
                f.status = FactStatus.SUPERSEDED


def _check(source: Source, chunks: Sequence[Chunk], extraction: DocumentExtraction) -> None:
    if extraction.source_id != source.id:
        raise UsageError(
            f"the extraction is of source {extraction.source_id!r}, not {source.id!r}",
            fix="integrate each extraction with the source it was extracted from",
        )
    known = {c.id for c in chunks}
    if unknown := sorted({c.chunk_id for c in extraction.facts} - known):
        raise UsageError(
            f"candidate facts quote chunks that were not passed: {', '.join(unknown[:3])}",
            fix="pass every chunk of the document with its extraction",
        )


def _embedded(embedder: Embedder, chunks: Sequence[Chunk]) -> list[Chunk]:
    missing = [c for c in chunks if c.embedding is None]
    if not missing:
        return list(chunks)
    vectors = dict(
        zip((c.id for c in missing), embedder.embed([c.text for c in missing]), strict=True)
    )
    return [
        c if c.id not in vectors else c.model_copy(update={"embedding": vectors[c.id].tolist()})
        for c in chunks
    ]


def _mentions(extraction: DocumentExtraction) -> list[Mention]:
    found = list(extraction.mentions)
    for c in extraction.facts:
        found.append(c.subject)
        if c.object is not None:
            found.append(c.object)
    return found


def integrate(
    store: GraphStore,
    source: Source,
    chunks: Sequence[Chunk],
    extraction: DocumentExtraction,
    *,
    embedder: Embedder,
    schema: GraphSchema | None = None,
    now: datetime | None = None,
    resolver: Resolver | None = None,
    settings: IntegrateSettings | None = None,
) -> IntegrationReport:
    """Integrate one document (see the module docstring for the rules), in one transaction.

    Pass one `Resolver` for a whole batch: it caches entity names between documents (without
    one, each call reads every entity name once)."""
    _check(source, chunks, extraction)
    settings = settings or IntegrateSettings()
    resolver = resolver or Resolver(store, embedder, settings.resolve)
    now = now or utcnow()
    try:
        with store.transaction():
            if store.get_source(source.id) is not None:
                return IntegrationReport(documents=1, skipped=1)
            doc = _Document(store, source, schema or GraphSchema(), settings, now)
            store.upsert_sources([source])
            store.upsert_chunks(_embedded(embedder, chunks))
            withdrawn = doc.supersede_older_versions() if source.key else []
            resolution = resolver.resolve(
                _mentions(extraction), source_id=source.id, seen=doc.seen, now=now
            )
            assertions = doc.assertions(extraction, resolution)
            doc.ledger.load(store.get_facts([a.base_id for a in assertions]))
            doc.ledger.prefetch(
                {(a.subject_id, a.predicate) for a in assertions if doc.functional(a)}
            )
            evidence: dict[tuple[str, str, str], Evidence] = {}
            for a in assertions:
                fact = doc.assert_fact(a)
                for e in doc.evidence(fact, a, extraction.model):
                    evidence[(e.fact_id, e.chunk_id or "", e.quote)] = e
            doc.retire_orphans(withdrawn)
            store.upsert_entities(list(resolution.entities.values()))
            store.upsert_facts(list(doc.ledger.changed.values()))
            store.add_evidence(list(evidence.values()))
            retired = doc.ledger.retirements()
            for f in retired:
                store.retire_fact(
                    f.id, at=now, reason=f.retire_reason, status=f.status, valid_to=f.valid_to
                )
    except BaseException:
        resolver.forget()  # it may know entities the rollback took back
        raise
    r = doc.report
    r.entities_created, r.merges = resolution.created, resolution.merged
    r.retired, r.contested = len(retired), doc.ledger.newly_contested()
    r.evidence_added = len(evidence)
    return r
