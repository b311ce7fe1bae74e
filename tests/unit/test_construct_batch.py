"""`integrate_many`: a batch in one transaction gives what integrating one by one gives, and a
document that fails is left out alone."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evergraph.embed.base import Vectors
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.chunking import chunk_source
from evergraph.graph.construct import IntegrationReport, Item, integrate, integrate_many
from evergraph.graph.ingest import Document
from evergraph.graph.models import Entity, Evidence, Fact
from evergraph.graph.resolve import Resolver
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.graph.store.sqlite import SQLiteGraphStore

SCHEMA = GraphSchema(
    relations=[RelationType(name="leader", functional=True), RelationType(name="uses")]
)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
NAMES = [f"Name {w} {i}" for w in ("alpha", "beta", "gamma") for i in range(8)]


def documents(n: int, seed: int = 0) -> list[Item]:
    """Dated documents on shared entities: reinforcements, functional conflicts with
    same-date ties (two documents a date), literals, a repeated key (a new version
    supersedes the old), documents without a key, and a duplicate of an earlier content
    (skipped)."""
    rng = random.Random(seed)
    docs: list[Item] = []
    for d in range(n):
        date = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=30 * (d // 2))
        claims = []
        for i in range(6):
            s, o = rng.sample(NAMES, 2)
            predicate = "leader" if rng.random() < 0.4 else "uses"
            literal = f"{rng.randrange(3)} units" if rng.random() < 0.1 else None
            claims.append((s, predicate, o, literal, f"{s} {predicate} {literal or o} ({i})."))
        text = " ".join(c[4] for c in claims)
        key = "versioned" if d in (3, 9, 15) else "" if d % 7 == 6 else f"doc-{d}"
        source = Document(key, f"Doc {d}", text, date, "", {}, "test").to_source()
        chunks = chunk_source(source, max_chars=len(text) + 1)
        facts = [
            CandidateFact(
                subject=Mention(name=s, type="Thing"),
                predicate=p,
                object=None if lit else Mention(name=o, type="Thing"),
                object_value=lit,
                quote=q,
                chunk_id=chunks[0].id,
                agreement=(a := rng.choice((0.4, 0.6, 0.8))),
                confidence=a,
            )
            for s, p, o, lit, q in claims
        ]
        docs.append((source, chunks, DocumentExtraction(source_id=source.id, facts=facts)))
    return [*docs, docs[5]]


def state(store: SQLiteGraphStore) -> tuple[object, ...]:
    """Everything integration decides, independent of write order."""

    def every(records: Sequence[Fact | Entity | Evidence]) -> list[dict[str, object]]:
        return sorted(
            (r.model_dump(exclude={"id"} if isinstance(r, Evidence) else set()) for r in records),
            key=repr,
        )

    facts, _ = store.scan(Fact, limit=100_000)
    entities, _ = store.scan(Entity, limit=100_000)
    evidence, _ = store.scan(Evidence, limit=100_000)
    retires = sorted(
        (c.item_id, repr(sorted(c.payload.items())))
        for c in store.changes(limit=100_000)
        if c.op == "retire"
    )
    return every(facts), every(entities), every(evidence), retires, store.stats().sources


def test_a_batch_gives_what_one_by_one_gives(tmp_path: Path) -> None:
    docs, embedder = documents(24), HashingEmbedder()
    with (
        SQLiteGraphStore(tmp_path / "one.db") as one,
        SQLiteGraphStore(tmp_path / "many.db") as many,
    ):
        resolver = Resolver(one, embedder)
        singles = [
            integrate(one, *d, embedder=embedder, schema=SCHEMA, now=NOW, resolver=resolver)
            for d in docs
        ]
        resolver = Resolver(many, embedder)
        batched: list[IntegrationReport | Exception] = []
        for start in range(0, len(docs), 10):
            batched += integrate_many(
                many,
                docs[start : start + 10],
                embedder=embedder,
                schema=SCHEMA,
                now=NOW,
                resolver=resolver,
            )
        assert batched == singles
        total = sum(singles, IntegrationReport())
        assert total.retired and total.contested and total.sources_superseded and total.skipped
        assert total.facts_reinforced
        assert state(many) == state(one)
        retires = [c for c in many.changes(limit=100_000) if c.op == "retire"]
        assert len(retires) == total.retired  # one retire logged per retirement


class PoisonedEmbedder(HashingEmbedder):
    """Fails on any text naming "Poison", as a model server might on one document."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        if any("Poison" in t for t in texts):
            raise RuntimeError("the embedder failed")
        return super().embed(texts)


def test_a_failing_document_is_left_out_alone(tmp_path: Path) -> None:
    docs = documents(8, seed=1)[:8]
    source, chunks, extraction = docs[4]
    bad_fact = extraction.facts[0].model_copy(
        update={"subject": Mention(name="Poison", type="Thing")}
    )
    docs[4] = (source, chunks, extraction.model_copy(update={"facts": [bad_fact]}))
    wrong = docs[6][2].model_copy(update={"source_id": "elsewhere"})
    docs[6] = (docs[6][0], docs[6][1], wrong)
    embedder = PoisonedEmbedder()
    with (
        SQLiteGraphStore(tmp_path / "many.db") as many,
        SQLiteGraphStore(tmp_path / "one.db") as one,
    ):
        outcomes = integrate_many(many, docs, embedder=embedder, schema=SCHEMA, now=NOW)
        assert isinstance(outcomes[4], RuntimeError)
        assert isinstance(outcomes[6], UsageError)
        assert all(
            isinstance(o, IntegrationReport) for i, o in enumerate(outcomes) if i not in (4, 6)
        )
        assert many.get_source(docs[4][0].id) is None and many.get_source(docs[6][0].id) is None
        resolver = Resolver(one, embedder)
        for i, d in enumerate(docs):
            if i not in (4, 6):
                integrate(one, *d, embedder=embedder, schema=SCHEMA, now=NOW, resolver=resolver)
        assert state(many) == state(one)


def document(key: str, day: int, claims: Sequence[tuple[str, str, str]]) -> Item:
    text = " ".join(f"{s} {p} {o}." for s, p, o in claims) or "Nothing."
    date = datetime(2001, 1, day, tzinfo=UTC)
    source = Document(key, f"{key} {day}", text, date, "", {}, "test").to_source()
    chunks = chunk_source(source)
    facts = [
        CandidateFact(
            subject=Mention(name=s, type="Thing"),
            predicate=p,
            object=Mention(name=o, type="Thing"),
            quote=f"{s} {p} {o}.",
            chunk_id=chunks[0].id,
            agreement=0.8,
            confidence=0.8,
        )
        for s, p, o in claims
    ]
    return source, chunks, DocumentExtraction(source_id=source.id, facts=facts)


def test_a_new_version_in_a_batch_counts_the_evidence_the_batch_added(tmp_path: Path) -> None:
    """The batch writes what it holds before a document replaces an older stored version:
    the fact the old version shared with an earlier document of the batch keeps that one's
    evidence and stays."""
    claim = ("Ada", "uses", "Engine")
    embedder = HashingEmbedder()
    with SQLiteGraphStore(tmp_path / "g.db") as store:
        integrate(store, *document("k", 1, [claim]), embedder=embedder, schema=SCHEMA, now=NOW)
        batch = [document("other", 2, [claim]), document("k", 3, [])]
        reports = integrate_many(store, batch, embedder=embedder, schema=SCHEMA, now=NOW)
        assert [r.sources_superseded for r in reports if isinstance(r, IntegrationReport)] == [0, 1]
        (fact,) = store.scan(Fact)[0]
        assert (fact.support, fact.retired_at) == (1, None)
        assert len(store.evidence_for(fact.id)) == 1
