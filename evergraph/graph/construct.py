"""The constructor: documents' candidate facts into the graph, each document all or nothing.

`integrate` takes one document in one store transaction; `integrate_many` takes several, in
date order, in one transaction (a batch: one commit, one write per table, facts and entities
that the documents share read once), with the same result as one by one (see `_Batch`).

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
per-document work is a handful of store reads, not a query per fact, and the writes are made
once per batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph import ids
from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.confidence import CONFIDENCE_CAP, check_cap, noisy_or, recounted
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, FactStatus, Source, utcnow
from evergraph.graph.resolve import Resolution, Resolver, ResolveSettings
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.base import GraphStore
from evergraph.graph.timeline import Timeline, before, key_of, object_key

SUPERSEDED_SOURCE = "source superseded"
_NEW: tuple[object, ...] = (None, None, None, None)  # the state "before" of a new fact
EvidenceKey = tuple[str, str, str, str, str]  # fact, source, chunk ("" if none), quote, model


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


@dataclass(slots=True)  # one per fact: no __dict__ to allocate and for the GC to walk
class _Assertion:
    """One triple as this document states it, with every candidate that stated it."""

    subject_id: str
    predicate: str
    object_id: str | None
    object_value: str | None
    functional: bool  # of a functional predicate: asked once per triple, not three times
    candidates: list[CandidateFact] = field(default_factory=list)
    base_id: str = field(init=False)
    object_key: str = field(init=False)  # compared with every record of a timeline

    def __post_init__(self) -> None:
        self.base_id = ids.fact_id(
            self.subject_id, self.predicate, self.object_id, self.object_value
        )
        self.object_key = key_of(self.object_id, self.object_value)

    @property
    def confidence(self) -> float:
        return max(c.confidence for c in self.candidates)


class _Ledger:
    """The facts a batch of documents reads and changes, each held once, written at the end.

    Shared by the documents of a batch, so a fact or a timeline is read once per batch; each
    document's retirements and contests are counted against `before`, the state of every fact
    it may change as it was when the document began (`begin`)."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.facts: dict[str, Fact] = {}
        self.changed: dict[str, Fact] = {}  # what the batch writes
        self.before: dict[str, tuple[object, ...]] = {}  # this document's: id -> state
        self.touched: dict[str, Fact] = {}  # by this document
        self._absent: set[str] = set()  # ids read and not found
        self._histories: dict[tuple[str, str], list[Fact]] = {}
        self._created: dict[tuple[str, str], list[Fact]] = {}  # not in the store yet

    @staticmethod
    def _state(f: Fact) -> tuple[object, ...]:
        return f.retired_at, f.status, f.valid_to, f.retire_reason

    def begin(self) -> None:
        self.before, self.touched = {}, {}

    def _seen(self, facts: Sequence[Fact]) -> None:
        for f in facts:
            if f.id not in self.before:  # (a state made only when it is kept)
                self.before[f.id] = self._state(f)

    def _hold(self, facts: Sequence[Fact]) -> list[Fact]:
        for f in facts:
            self.facts.setdefault(f.id, f)
        return [self.facts[f.id] for f in facts]

    def load(self, facts: Sequence[Fact]) -> list[Fact]:
        held = self._hold(facts)
        self._seen(held)
        return held

    def read(self, fact_ids: Sequence[str], pairs: set[tuple[str, str]]) -> None:
        """Hold these facts and the records of these (subject, predicate) pairs, one query
        each, read once per batch (an id read and not found is not re-read): a batch reads
        what all its documents need at once, and `fetch` and `prefetch` find it held."""
        wanted = [i for i in dict.fromkeys(fact_ids) if i not in self.facts]
        wanted = [i for i in wanted if i not in self._absent]
        found = self.store.get_facts(wanted) if wanted else []
        self._absent.update(set(wanted) - {f.id for f in found})
        self._hold(found)
        keys = sorted(pairs - self._histories.keys())
        for key in keys:  # with the records this batch created before the pair was read
            self._histories[key] = []
        for f in self._hold(self.store.facts_by_subject(keys)) if keys else []:
            self._histories[(f.subject_id, f.predicate)].append(f)
        for key in keys:
            self._histories[key] += self._created.pop(key, [])

    def fetch(self, fact_ids: Sequence[str]) -> None:
        """Hold these facts, their state as this document found them kept."""
        self.read(fact_ids, set())
        self._seen([self.facts[i] for i in fact_ids if i in self.facts])

    def prefetch(self, pairs: set[tuple[str, str]]) -> None:
        """Read the records of these (subject, predicate) pairs, their states kept."""
        self.read([], pairs)
        for key in pairs:
            self._seen(self._histories[key])

    def history(self, subject_id: str, predicate: str) -> list[Fact]:
        """Every record of (subject, predicate), whatever its time and status. (A cached
        pair was prefetched when the document began, or is of a non-functional predicate,
        whose records never change state: no snapshot to take.)"""
        key = (subject_id, predicate)
        if key not in self._histories:
            self.prefetch({key})
        return self._histories[key]

    def add(self, fact: Fact) -> None:
        self.facts[fact.id] = fact
        self.before[fact.id] = _NEW
        self.touch(fact)
        key = (fact.subject_id, fact.predicate)
        history = self._histories.get(key)
        if history is not None:
            history.append(fact)
        else:
            self._created.setdefault(key, []).append(fact)

    def touch(self, *facts: Fact) -> None:
        for f in facts:
            self.changed[f.id] = self.touched[f.id] = f

    def retirements(self) -> list[Fact]:
        """The facts this document retired, or whose retirement it changed."""
        return [
            f
            for f in self.touched.values()
            if f.retired_at is not None and self.before.get(f.id) != self._state(f)
        ]

    def newly_contested(self) -> int:
        return sum(
            1
            for f in self.touched.values()
            if f.status is FactStatus.CONTESTED
            and self.before.get(f.id, _NEW)[1] is not FactStatus.CONTESTED
        )


class _Document:
    """Integration of one document: the rules above, over a ledger."""

    def __init__(
        self,
        store: GraphStore,
        source: Source,
        settings: IntegrateSettings,
        now: datetime,
        ledger: _Ledger,
    ) -> None:
        self.store = store
        self.source = source
        self.cap = check_cap(settings.confidence_cap)
        self.epsilon = settings.tie_epsilon
        self.now = now
        self.when = source.published_at
        self.seen = source.published_at or now
        self.ledger = ledger
        self.report = IntegrationReport(documents=1)
        ledger.begin()

    def supersede(self, older: Sequence[Source]) -> list[Fact]:
        """Withdraw what older versions of this document said (the batch wrote what it had
        first: this reads evidence back); returns the facts they supported, recounted
        (possibly without any evidence left)."""
        if not older:
            return []
        supported: set[str] = set()
        for old in older:
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

    def assert_fact(self, a: _Assertion) -> Fact:
        if a.functional:
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

    def evidence(self, fact: Fact, a: _Assertion, model: str) -> dict[EvidenceKey, CandidateFact]:
        """Each candidate as evidence of the fact, by what makes it the same extraction (the
        batch makes the records when it writes them: `_Batch._evidence`)."""
        return {
            (fact.id, self.source.id, c.chunk_id or "", c.quote, model): c for c in a.candidates
        }

    def retire_orphans(self, facts: Sequence[Fact]) -> None:
        for f in facts:
            if f.support == 0 and f.retired_at is None:
                f.retired_at, f.retire_reason = self.now, SUPERSEDED_SOURCE
                f.status = FactStatus.SUPERSEDED


def _assertions(
    extraction: DocumentExtraction, resolution: Resolution, functional: Callable[[str], bool]
) -> list[_Assertion]:
    found: dict[tuple[str, str, str | None, str | None], _Assertion] = {}
    for c in extraction.facts:
        obj = None if c.object is None else resolution.id_of(c.object)
        value = None if c.object_value is None else " ".join(c.object_value.split())
        key = (resolution.id_of(c.subject), c.predicate, obj, value)
        a = found.get(key)
        if a is None:
            a = found[key] = _Assertion(*key, functional(c.predicate))
        a.candidates.append(c)
    return list(found.values())


def _timelines(assertions: Sequence[_Assertion]) -> set[tuple[str, str]]:
    """The (subject, predicate) timelines these assertions may change: those of functional
    predicates."""
    return {(a.subject_id, a.predicate) for a in assertions if a.functional}


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


Item = tuple[Source, Sequence[Chunk], DocumentExtraction]  # a document and its extraction
Outcome = IntegrationReport | Exception  # a document's report, or why it was not integrated


def _embedded(embedder: Embedder, documents: Sequence[Sequence[Chunk]]) -> list[list[Chunk]]:
    """The chunks of every document, those without an embedding embedded in one call."""
    missing = [c for chunks in documents for c in chunks if c.embedding is None]
    vectors = (
        dict(zip((c.id for c in missing), embedder.embed([c.text for c in missing]), strict=True))
        if missing
        else {}
    )
    return [
        [
            c if c.id not in vectors else c.model_copy(update={"embedding": vectors[c.id].tolist()})
            for c in chunks
        ]
        for chunks in documents
    ]


def _mentions(extraction: DocumentExtraction) -> list[Mention]:
    found = list(extraction.mentions)
    for c in extraction.facts:
        found.append(c.subject)
        if c.object is not None:
            found.append(c.object)
    return found


class _Batch:
    """Documents integrated in date order in one transaction, over one ledger, their writes
    held and made once at the end: per document that saves a commit (WAL pages of five tables
    and the full-text index), a dozen statements, and rereading the facts and entities that
    documents share. A document that replaces an older version reads evidence back from the
    store, so what the batch holds is written before it."""

    def __init__(
        self,
        store: GraphStore,
        embedder: Embedder,
        schema: GraphSchema,
        settings: IntegrateSettings,
        resolver: Resolver,
        now: datetime,
    ) -> None:
        self.store, self.embedder, self.schema = store, embedder, schema
        self.settings, self.resolver, self.now = settings, resolver, now
        self.functional_predicates: dict[str, bool] = {}
        self._hold()

    def _hold(self) -> None:
        self.ledger = _Ledger(self.store)
        self.keys: set[str] = set()
        self.sources: list[Source] = []
        self.chunks: list[Chunk] = []
        self.entities: dict[str, Entity] = {}
        self.evidence: dict[EvidenceKey, CandidateFact] = {}
        self.retired: list[Fact] = []  # copies as each document left them, in order

    def _write(self) -> None:
        """What the batch holds, in the order the records refer to each other."""
        if self.sources:
            self.store.upsert_sources(self.sources)
            self.store.upsert_chunks(self.chunks)
            self.store.upsert_entities(list(self.entities.values()))
            self.store.upsert_facts(list(self.ledger.changed.values()))
            self.store.add_evidence([self._evidence(*e) for e in self.evidence.items()])
            for f in self.retired:  # logged once per document that retired it, as alone
                self.store.retire_fact(
                    f.id, at=self.now, reason=f.retire_reason, status=f.status, valid_to=f.valid_to
                )
        self._hold()

    def functional(self, predicate: str) -> bool:
        found = self.functional_predicates.get(predicate)
        if found is None:  # the schema is searched once per predicate and batch
            found = self.functional_predicates[predicate] = self.schema.is_functional(predicate)
        return found

    def _evidence(self, key: EvidenceKey, c: CandidateFact) -> Evidence:
        """Made only now: held by the thousand until the write, records cost the collector
        more than the candidates they are made from."""
        fact_id, source_id, _, _, model = key
        return Evidence(
            fact_id=fact_id,
            source_id=source_id,
            chunk_id=c.chunk_id,
            quote=c.quote,
            agreement=c.agreement,
            model=model,
            extracted_at=self.now,
            confidence=c.confidence,
            subject_mention=c.subject.name,
            object_mention="" if c.object is None else c.object.name,
        )

    def run(self, items: Sequence[Item]) -> list[IntegrationReport]:
        with self.store.transaction():
            fresh: dict[str, int] = {}  # source id -> the item that integrates it
            for i, (source, _, _) in enumerate(items):
                if source.id not in fresh and self.store.get_source(source.id) is None:
                    fresh[source.id] = i
            todo = sorted(fresh.values())
            embedded = _embedded(self.embedder, [items[i][1] for i in todo])
            chunks = dict(zip(todo, embedded, strict=True))
            mentions = [_mentions(items[i][2]) for i in todo]
            self.resolver.prepare(mentions)
            resolved = {
                i: self._resolve(items[i][0], items[i][2], m)
                for i, m in zip(todo, mentions, strict=True)
            }
            stated = [a for _, assertions in resolved.values() for a in assertions]
            self.ledger.read([a.base_id for a in stated], _timelines(stated))
            reports = [
                self._document(source, chunks[i], extraction, *resolved[i])
                if i in chunks
                else IntegrationReport(documents=1, skipped=1)
                for i, (source, _, extraction) in enumerate(items)
            ]
            self._write()
        return reports

    def _resolve(
        self, source: Source, extraction: DocumentExtraction, mentions: list[Mention]
    ) -> tuple[Resolution, list[_Assertion]]:
        """A document's mentions resolved and its triples stated, before any document of the
        batch is integrated (resolution reads no facts), so that the facts they need are read
        for the whole batch at once."""
        seen = source.published_at or self.now
        resolution = self.resolver.resolve(mentions, source_id=source.id, seen=seen, now=self.now)
        return resolution, _assertions(extraction, resolution, self.functional)

    def _document(
        self,
        source: Source,
        chunks: list[Chunk],
        extraction: DocumentExtraction,
        resolution: Resolution,
        assertions: list[_Assertion],
    ) -> IntegrationReport:
        if source.key and source.key in self.keys:
            self._write()  # an older version is held: store it, then replace it
        found = self.store.find_sources(source.key) if source.key else []
        older = [s for s in found if s.id != source.id]
        if older:
            self._write()
        if source.key:
            self.keys.add(source.key)
        doc = _Document(self.store, source, self.settings, self.now, self.ledger)
        self.sources.append(source)
        self.chunks += chunks
        withdrawn = doc.supersede(older)
        self.ledger.fetch([a.base_id for a in assertions])
        self.ledger.prefetch(_timelines(assertions))
        evidence: dict[EvidenceKey, CandidateFact] = {}
        for a in assertions:
            evidence.update(doc.evidence(doc.assert_fact(a), a, extraction.model))
        doc.retire_orphans(withdrawn)
        self.entities.update(resolution.entities)
        self.evidence.update(evidence)
        retired = self.ledger.retirements()
        self.retired += [f.model_copy() for f in retired]
        r = doc.report
        r.entities_created, r.merges = resolution.created, resolution.merged
        r.retired, r.contested = len(retired), self.ledger.newly_contested()
        r.evidence_added = len(evidence)
        return r


def integrate_many(
    store: GraphStore,
    items: Sequence[Item],
    *,
    embedder: Embedder,
    schema: GraphSchema | None = None,
    now: datetime | None = None,
    resolver: Resolver | None = None,
    settings: IntegrateSettings | None = None,
) -> list[Outcome]:
    """Integrate documents (in the order given: date order) in one transaction, with the
    rules of `integrate`; the result is the same as integrating them one by one.

    Each document is all or nothing: one that fails (bad input, a store error) is not
    written and its outcome is the exception; the others are integrated. Bad input is found
    before anything is written; any other failure rolls the batch back, and its documents are
    then integrated one at a time, each in its own transaction, so that only the failing one
    is lost. (Inside a transaction the caller opened, a failure fails that transaction.)"""
    settings = settings or IntegrateSettings()
    resolver = resolver or Resolver(store, embedder, settings.resolve)
    now = now or utcnow()
    batch = _Batch(store, embedder, schema or GraphSchema(), settings, resolver, now)
    outcomes: dict[int, Outcome] = {}
    valid: list[int] = []
    for i, item in enumerate(items):
        try:
            _check(*item)
            valid.append(i)
        except UsageError as e:
            outcomes[i] = e

    def attempt(group: list[int]) -> Exception | None:
        nonlocal batch
        try:
            reports = batch.run([items[i] for i in group])
        except Exception as e:
            resolver.forget()  # it may know entities the rollback took back
            batch = _Batch(store, embedder, batch.schema, settings, resolver, now)
            return e
        except BaseException:
            resolver.forget()
            raise
        outcomes.update(zip(group, reports, strict=True))
        return None

    failed = attempt(valid) if valid else None
    if failed is not None and len(valid) == 1:
        outcomes[valid[0]] = failed
    elif failed is not None:  # only now, each document alone
        for i in valid:
            if (error := attempt([i])) is not None:
                outcomes[i] = error
    return [outcomes[i] for i in range(len(items))]


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
    """Integrate one document (see the module docstring for the rules), in one transaction:
    a batch of one (`integrate_many`), raising what failed it.

    Pass one `Resolver` for a whole batch: it caches entity names between documents (without
    one, each call reads every entity name once)."""
    (outcome,) = integrate_many(
        store,
        [(source, chunks, extraction)],
        embedder=embedder,
        schema=schema,
        now=now,
        resolver=resolver,
        settings=settings,
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
