"""Index short passages for retrieval: one source and one embedded chunk per passage.

For corpora of paragraphs (HotpotQA, MuSiQue, abstracts) that need no chunking. The title
opens the text, so that BM25 and the embedder both see the name a paragraph is about, as
HippoRAG indexes its passages; the chunk is then the whole source text, and a quote checked
against the chunk is verbatim in the source too.

A passage's source is the one `evergraph ingest` makes of the same document (`document`), so
that a graph built from the passages by the builder (with `chunk` as its chunker) lands on the
very records indexed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from evergraph.embed.base import Embedder
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, content_id
from evergraph.graph.store.base import GraphStore

BATCH = 256  # passages embedded and written together


@dataclass(frozen=True)
class Passage:
    title: str
    text: str
    key: str = ""  # the user's id for it, if any
    published_at: datetime | None = None

    @property
    def body(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def document(self) -> Document:
        return Document(self.key, self.title, self.body, self.published_at, "", {}, "passage")

    @property
    def source_id(self) -> str:
        return self.document.source_id

    @property
    def chunk_id(self) -> str:
        return content_id(self.source_id, "0")

    def chunk(self, embedding: list[float] | None = None) -> Chunk:
        """The passage as one chunk: its whole text."""
        return Chunk(
            id=self.chunk_id,
            source_id=self.source_id,
            ordinal=0,
            text=self.body,
            embedding=embedding,
        )


def index_passages(
    store: GraphStore,
    embedder: Embedder,
    passages: Sequence[Passage],
    *,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write and embed the passages (idempotent: ids are content hashes); their chunk ids.
    `progress` hears (passages done, total) before the first batch and after each: a corpus
    of a thousand paragraphs takes about a minute."""
    report = progress or (lambda done, total: None)
    report(0, len(passages))
    for start in range(0, len(passages), batch):
        part = passages[start : start + batch]
        vectors = embedder.embed([p.body for p in part])
        sources = [p.document.to_source() for p in part]
        chunks = [p.chunk(v.tolist()) for p, v in zip(part, vectors, strict=True)]
        with store.transaction():
            store.upsert_sources(sources)
            store.upsert_chunks(chunks)
        report(start + len(part), len(passages))
    return [p.chunk_id for p in passages]
