"""Scripted documents for the graph tests: what an extractor would hand the constructor, with
no model involved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.chunking import chunk_source
from evergraph.graph.construct import IntegrationReport, integrate
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, Entity, Fact, Source
from evergraph.graph.resolve import Resolver
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.graph.store.base import GraphStore

SCHEMA = GraphSchema(
    relations=[
        RelationType(name="capital", functional=True),
        RelationType(name="population", functional=True, range="literal"),
    ]
)
EMBEDDER = HashingEmbedder()


def year(y: int, month: int = 1) -> datetime:
    return datetime(y, month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """One candidate fact: subject, predicate, object entity (or `value`), agreement."""

    subject: str
    predicate: str
    object: str | None = None
    value: str | None = None
    agreement: float = 0.8
    quote: str | None = None
    subject_type: str = "Thing"
    object_type: str = "Thing"
    aliases: tuple[str, ...] = ()


@dataclass
class Doc:
    claims: list[Claim]
    date: datetime | None = None
    key: str = ""
    text: str = ""
    model: str = "scripted"
    mentions: list[Mention] = field(default_factory=list)

    def source(self) -> tuple[Source, list[Chunk]]:
        text = self.text or " ".join(
            c.quote or f"{c.subject} {c.predicate} {c.object or c.value}." for c in self.claims
        ) + (f" ({self.date:%Y-%m})" if self.date else "")
        document = Document(
            key=self.key, title="", text=text, date=self.date, uri="", metadata={}, origin="test"
        )
        source = document.to_source()
        return source, chunk_source(source)

    def extraction(self, source: Source, chunks: list[Chunk]) -> DocumentExtraction:
        facts = [
            CandidateFact(
                subject=Mention(name=c.subject, type=c.subject_type, aliases=list(c.aliases)),
                predicate=c.predicate,
                object=None if c.object is None else Mention(name=c.object, type=c.object_type),
                object_value=c.value,
                quote=c.quote or f"{c.subject} {c.predicate} {c.object or c.value}.",
                chunk_id=chunks[0].id,
                agreement=c.agreement,
                confidence=c.agreement,
            )
            for c in self.claims
        ]
        return DocumentExtraction(
            source_id=source.id, facts=facts, mentions=self.mentions, model=self.model
        )


def ingest(
    store: GraphStore,
    doc: Doc,
    *,
    now: datetime | None = None,
    resolver: Resolver | None = None,
    schema: GraphSchema = SCHEMA,
) -> IntegrationReport:
    source, chunks = doc.source()
    return integrate(
        store,
        source,
        chunks,
        doc.extraction(source, chunks),
        embedder=EMBEDDER,
        schema=schema,
        now=now,
        resolver=resolver,
    )


def entity(store: GraphStore, name: str) -> Entity:
    (found,) = store.find_entities(name)
    return found


def objects(store: GraphStore, facts: list[Fact]) -> list[str]:
    """The objects of facts, by name (literal values as they are), sorted."""
    names = []
    for f in facts:
        if f.object_id is None:
            names.append(f.object_value or "")
        else:
            e = store.get_entity(f.object_id)
            assert e is not None
            names.append(e.name)
    return sorted(names)
