"""A knowledge graph over a multi-hop corpus, built by the LLM, so that hybrid+graph is measured.

The builder reads every passage as `evergraph ingest` would read the same document, each
passage kept whole as one chunk (the records `index_passages` makes), and integrates the facts
it extracts into a store of its own beside the text-only corpus (the text-only figures stay
comparable across runs). Its checkpoints sit next to that store, so an interrupted build
resumes where it stopped; a finished one is reused by the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evergraph.agents.build import Builder, Progress, Summary, constructor
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.embed.base import Embedder
from evergraph.graph.models import Chunk, Source, content_id
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.base import GraphStore
from evergraph.llm.base import LLM
from evergraph.retrieval.index import Passage


@dataclass(frozen=True)
class GraphBuild:
    """How to build the corpus graph: the model, its extraction options, requests in flight."""

    llm: LLM
    options: ExtractOptions
    concurrency: int
    progress: Callable[[Progress], None] | None = None

    @property
    def tag(self) -> str:
        """Names the graph store: another model or sampling builds another graph."""
        return content_id(self.llm.model, repr(self.options))[:8]


async def build_graph(
    store: GraphStore, passages: Sequence[Passage], build: GraphBuild, *, embedder: Embedder,
    checkpoints: Path,
) -> Summary:  # fmt: skip
    whole = {p.source_id: p.chunk() for p in passages}

    def chunker(source: Source) -> list[Chunk]:
        return [whole[source.id]]

    schema = GraphSchema()
    builder = Builder(
        store,
        Extractor(build.llm, schema, build.options),
        constructor(store, embedder, schema),
        concurrency=build.concurrency,
        progress=build.progress,
        chunker=chunker,
    )
    async with open_checkpointer(checkpoints) as saver:
        return await builder.run([p.document for p in passages], saver)
