"""The smoke run: store and embed a few documents, retrieve, ask the model one question.

It proves the whole path (store, embedder, LLM) end to end on a fresh machine until the
graph builder takes over as the main job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph.models import Chunk, Source, content_id
from evergraph.graph.store.base import GraphStore
from evergraph.llm.base import LLM, Usage

TEXT_SUFFIXES = {".md", ".txt"}


class Answer(BaseModel):
    answer: str = Field(description="a short answer")
    quote: str = Field(description="the sentence of the context that supports it")


@dataclass
class SmokeResult:
    sources: int
    chunks: int
    context: list[str]
    answers: list[Answer]
    dropped: int
    usage: Usage


def read_documents(paths: Sequence[Path]) -> list[Source]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in TEXT_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p} does not exist", fix="pass existing files or folders")
    if not files:
        raise UsageError("no .md or .txt documents found", fix="pass a folder with documents")
    sources = []
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        sources.append(Source(id=content_id(text), title=f.stem, text=text, uri=f.as_uri()))
    return sources


def paragraphs(source: Source) -> list[Chunk]:
    parts = [p.strip() for p in re.split(r"\n\s*\n", source.text) if p.strip()]
    return [
        Chunk(id=content_id(source.id, str(i)), source_id=source.id, ordinal=i, text=p)
        for i, p in enumerate(parts)
    ]


def store_documents(store: GraphStore, embedder: Embedder, sources: list[Source]) -> int:
    chunks = [c for s in sources for c in paragraphs(s)]
    vectors = embedder.embed([c.text for c in chunks])
    for c, v in zip(chunks, vectors, strict=True):
        c.embedding = v.tolist()
    with store.transaction():
        store.upsert_sources(sources)
        store.upsert_chunks(chunks)
    return len(chunks)


def retrieve(store: GraphStore, embedder: Embedder, question: str, k: int = 3) -> list[str]:
    """Reciprocal-rank fusion of BM25 and vector hits: enough retrieval for a smoke run."""
    vector = embedder.embed([question])[0].tolist()
    scores: dict[str, float] = {}
    texts: dict[str, str] = {}
    for hits in (
        store.search_chunks_text(question, k=10),
        store.search_chunks_vector(vector, k=10),
    ):
        for rank, (chunk, _) in enumerate(hits):
            scores[chunk.id] = scores.get(chunk.id, 0.0) + 1.0 / (60 + rank)
            texts[chunk.id] = chunk.text
    best = sorted(scores, key=lambda cid: -scores[cid])[:k]
    return [texts[cid] for cid in best]


async def run_smoke(
    store: GraphStore, embedder: Embedder, llm: LLM, sources: list[Source], question: str, n: int
) -> SmokeResult:
    """Store and embed `sources` (from `read_documents`, called first so that a wrong path
    fails before the embedder loads), retrieve for `question`, ask for `n` answers."""
    n_chunks = store_documents(store, embedder, sources)
    context = retrieve(store, embedder, question)
    prompt = "Context:\n" + "\n\n".join(context) + f"\n\nQuestion: {question}"
    samples = await llm.structured(
        [
            {"role": "system", "content": "Answer from the context only, in JSON."},
            {"role": "user", "content": prompt},
        ],
        Answer,
        n=n,
        max_tokens=160,
    )
    return SmokeResult(
        sources=len(sources),
        chunks=n_chunks,
        context=context,
        answers=samples.values,
        dropped=samples.dropped_invalid + samples.dropped_length,
        usage=samples.usage,
    )
