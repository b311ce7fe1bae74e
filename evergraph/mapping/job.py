"""The mapping batch job: papers through the graph builder, with the paper-level edges.

It is `agents.build.Builder` (date order, checkpoints, resume, bounded concurrency) with two
wrappers: `PaperExtractor` never lets one paper stop the job (retried with backoff, then
recorded in `failures.jsonl` and left out of the store, so the next run of the same command
tries it again), and `PaperIntegrate` adds `concepts.with_paper_edges` before the constructor
writes the paper. `executor="ray"` runs the extraction on Ray first (`ray_stage`), then
integrates here exactly as the local executor does: one writer, date order, so both give the
same graph.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from evergraph.agents.build import (
    Builder,
    Integrate,
    Integrated,
    Item,
    Progress,
    Summary,
    order,
)
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.errors import UnreachableError, UsageError
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.construct import IntegrationReport
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, Source
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.base import GraphStore
from evergraph.llm.base import LLM
from evergraph.mapping.concepts import with_paper_edges
from evergraph.mapping.options import Executor, MapOptions

PAPER_FAILED = "paper_failed"  # a `DocumentExtraction.rejected` key: nothing to integrate
CHECKPOINTS = "checkpoints.db"
FAILURES = "failures.jsonl"
STORE = "graph.db"

LLMFactory = Callable[[], AbstractAsyncContextManager[LLM]]
"""Opens the LLM client: called once locally, once per batch on each Ray worker."""


def paper(document: Document) -> Document:
    """A paper's text for extraction: its title, then its abstract (titles name concepts too)."""
    if not document.title or document.text.startswith(document.title):
        return document
    return replace(document, text=f"{document.title}\n\n{document.text}")


def papers(documents: Sequence[Document]) -> list[Document]:
    return order([paper(d) for d in documents])


async def extract_or_fail(
    extract: Callable[[], Awaitable[DocumentExtraction]],
    source_id: str,
    model: str,
    options: MapOptions,
) -> tuple[DocumentExtraction, str | None]:
    """The paper's extraction, or an empty one marked `PAPER_FAILED` and the last error.
    Raises `UnreachableError` when no attempt reached the model server: the job stops (and
    resumes on the next run) rather than record every remaining paper as failed."""
    error: Exception | None = None
    for attempt in range(options.attempts):
        if attempt:
            await asyncio.sleep(options.backoff_s * 2 ** (attempt - 1))
        try:
            return await extract(), None
        except Exception as e:  # one paper must never stop the job: recorded by the caller
            error = e
    if isinstance(error, UnreachableError):
        raise error
    failed = DocumentExtraction(source_id=source_id, rejected={PAPER_FAILED: 1}, model=model)
    return failed, f"{type(error).__name__}: {error}"


@dataclass
class FailureLog:
    """Papers that failed every attempt, appended to a JSON Lines file as they happen."""

    path: Path
    keys: dict[str, str] = field(default_factory=dict)  # source id -> the paper's id
    failed: list[str] = field(default_factory=list)  # source ids, this run

    def record(self, source_id: str, attempts: int, error: str) -> None:
        self.failed.append(source_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "paper": self.keys.get(source_id, ""),
            "source_id": source_id,
            "attempts": attempts,
            "error": error,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


class PaperExtractor(Extractor):
    """An extractor whose `document` never raises (see the module docstring)."""

    def __init__(
        self,
        llm: LLM,
        schema: GraphSchema,
        options: ExtractOptions,
        *,
        map_options: MapOptions,
        failures: FailureLog,
    ) -> None:
        super().__init__(llm, schema, options)
        self.map_options = map_options
        self.failures = failures

    async def document(self, source_id: str, chunks: Sequence[Chunk]) -> DocumentExtraction:
        extract = partial(Extractor.document, self, source_id, chunks)
        extraction, error = await extract_or_fail(
            extract, source_id, self.llm.model, self.map_options
        )
        if error is not None:
            self.failures.record(source_id, self.map_options.attempts, error)
        return extraction


class Precomputed(Extractor):
    """Hands the builder extractions made elsewhere (on Ray); same job id as the real one."""

    def __init__(self, inner: Extractor, extractions: dict[str, DocumentExtraction]) -> None:
        super().__init__(inner.llm, inner.schema, inner.options)
        self.extractions = extractions

    async def document(self, source_id: str, chunks: Sequence[Chunk]) -> DocumentExtraction:
        return self.extractions[source_id]


@dataclass(frozen=True)
class PaperIntegrate:
    """`base` with each paper's concept edges added; a failed paper is not written."""

    base: Integrate
    confidence: float

    def _edges(self, source: Source, chunks: Sequence[Chunk], e: DocumentExtraction) -> Item:
        paper = source.key or source.id
        edges = with_paper_edges(e, paper=paper, chunk_id=chunks[0].id, confidence=self.confidence)
        return source, chunks, edges

    def __call__(
        self,
        store: GraphStore,
        source: Source,
        chunks: Sequence[Chunk],
        extraction: DocumentExtraction,
    ) -> Integrated:
        if PAPER_FAILED in extraction.rejected:
            return IntegrationReport(skipped=1)
        return self.base(store, *self._edges(source, chunks, extraction))

    def many(self, store: GraphStore, items: Sequence[Item]) -> list[Integrated | Exception]:
        """The papers that did not fail, in one batch of the base constructor."""
        good = [i for i, (_, _, e) in enumerate(items) if PAPER_FAILED not in e.rejected]
        done = self.base.many(store, [self._edges(*items[i]) for i in good])
        outcomes: dict[int, Integrated | Exception] = dict(zip(good, done, strict=True))
        return [outcomes.get(i, IntegrationReport(skipped=1)) for i in range(len(items))]


def _ray_stage() -> Callable[..., dict[str, tuple[DocumentExtraction, str | None]]]:
    try:
        from evergraph.mapping.ray_stage import extract_on_ray  # imports ray: lazily
    except ImportError as e:
        raise UsageError(
            f"--executor ray needs Ray ({e})", fix="pip install 'evergraph[ray]'"
        ) from None
    return extract_on_ray


@dataclass(frozen=True)
class MapSummary:
    build: Summary
    failed: list[str]  # source ids that failed every attempt in this run


class MapJob:
    """One mapping job into the store under `out_dir` (checkpoints and failures there too)."""

    def __init__(
        self,
        store: GraphStore,
        llm_factory: LLMFactory,
        schema: GraphSchema,
        extract_options: ExtractOptions,
        integrate: Integrate,
        out_dir: Path,
        options: MapOptions | None = None,
    ) -> None:
        self.store = store
        self.llm_factory = llm_factory
        self.schema = schema
        self.extract_options = extract_options
        self.integrate = PaperIntegrate(integrate, extract_options.rules.confidence_cap)
        self.out_dir = out_dir
        self.options = options or MapOptions()

    async def run(
        self,
        documents: Sequence[Document],
        *,
        progress: Callable[[Progress], None] | None = None,
        extracted: Callable[[int, int], None] | None = None,
    ) -> MapSummary:
        """Map `documents` (papers as read); `extracted(done, total)` reports the Ray stage."""
        todo = papers(documents)
        failures = FailureLog(self.out_dir / FAILURES, {d.source_id: d.key for d in todo})
        async with self.llm_factory() as llm:
            extractor: Extractor = PaperExtractor(
                llm,
                self.schema,
                self.extract_options,
                map_options=self.options,
                failures=failures,
            )
            concurrency = self.options.concurrency
            if self.options.executor is Executor.ray:
                extract_on_ray = _ray_stage()
                missing = [d for d in todo if self.store.get_source(d.source_id) is None]
                done = extract_on_ray(
                    missing, self.llm_factory, self.schema, self.extract_options,
                    self.options, progress=extracted,
                )  # fmt: skip
                for source_id, (_, error) in done.items():
                    if error is not None:
                        failures.record(source_id, self.options.attempts, error)
                extractor = Precomputed(extractor, {k: e for k, (e, _) in done.items()})
                concurrency = 1  # the extractions are ready: only integration is left
            builder = Builder(
                self.store, extractor, self.integrate, concurrency=concurrency, progress=progress
            )
            async with open_checkpointer(self.out_dir / CHECKPOINTS) as saver:
                summary = await builder.run(todo, saver)
        return MapSummary(summary, failures.failed)
