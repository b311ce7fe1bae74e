"""The batch builder: documents in, a temporal graph out, resumable after any interruption.

A LangGraph graph of one node, `step`, that loops until every document is handled. A step
takes the next window of documents (in date order), extracts them concurrently (at most
`concurrency` documents in flight against the model server; the next window's extractions
queue behind them, so the server does not idle while a window's last documents finish, and
are cancelled if the run stops), and integrates them strictly in
date order, as soon as a document and every earlier one are extracted: the next documents that
are extracted by then go with it in one store transaction (`Constructor.many`, each document
still all or nothing), else it goes alone. After each step the SQLite checkpointer records the
position and the running totals.

**Why nothing is duplicated.** The store decides, not the checkpoint: a document whose source
(content hash) is stored already is skipped, before extraction and again inside `integrate`'s
transaction, which writes the source together with its facts (a batch commits its documents
together or, after a failure, one by one). A kill -9 between a store commit
and the checkpoint write therefore replays at most one window on resume, and every document of
it that was committed is skipped; with the LLM response cache on, the replayed extractions cost
nothing either. A second run of a finished job starts over and skips everything. (A resumed
job's `skipped` count includes the documents an interrupted step had committed.)

**Documents** are sorted by date (undated last, ties by source id), so integration follows world
time even when the input files do not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from evergraph.agents.extract import Extractor, triples_rejected
from evergraph.embed.base import Embedder
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.chunking import chunk_source
from evergraph.graph.construct import IntegrationReport, Outcome, integrate, integrate_many
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, Source, content_id
from evergraph.graph.resolve import Resolver, ResolveSettings
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.base import GraphStore

WINDOW_PER_SLOT = 4  # a step takes concurrency x this many documents: few checkpoints, full pipe
_LAST = datetime.max.replace(tzinfo=UTC)


class Integrated(Protocol):
    """What integrating one document changed (`graph.construct.IntegrationReport`)."""

    skipped: int  # the store had this content already
    entities_created: int
    facts_created: int
    facts_reinforced: int
    merges: int
    retired: int


Item = tuple[Source, Sequence[Chunk], DocumentExtraction]


class Integrate(Protocol):
    """The constructor (`graph/construct`): one document in one store transaction, or several
    in one (`many`: in order, each all or nothing, a failure as its outcome)."""

    def __call__(
        self,
        store: GraphStore,
        source: Source,
        chunks: Sequence[Chunk],
        extraction: DocumentExtraction,
    ) -> Integrated: ...

    def many(
        self, store: GraphStore, items: Sequence[Item]
    ) -> Sequence[Integrated | Exception]: ...


class Constructor:
    """`graph.construct.integrate` with one entity resolver for the whole batch; `many`
    integrates the documents of a window that are extracted already in one transaction
    (`integrate_many`: same result, a fraction of the commits and statements)."""

    def __init__(self, store: GraphStore, embedder: Embedder, schema: GraphSchema) -> None:
        self.embedder, self.schema = embedder, schema
        self.resolver = Resolver(store, embedder, ResolveSettings())

    def __call__(
        self,
        store: GraphStore,
        source: Source,
        chunks: Sequence[Chunk],
        extraction: DocumentExtraction,
    ) -> IntegrationReport:
        return integrate(
            store,
            source,
            chunks,
            extraction,
            embedder=self.embedder,
            schema=self.schema,
            resolver=self.resolver,
        )

    def many(self, store: GraphStore, items: Sequence[Item]) -> list[Outcome]:
        """Each document's report, or the exception that kept it out (the others are in)."""
        return integrate_many(
            store, items, embedder=self.embedder, schema=self.schema, resolver=self.resolver
        )


def constructor(store: GraphStore, embedder: Embedder, schema: GraphSchema) -> Constructor:
    """The constructor the builder uses (an `Integrate`, batched when it can be)."""
    return Constructor(store, embedder, schema)


Prepared = tuple[Source | None, list[Chunk]]  # a document's source and chunks; None: stored


def _succeeded(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


class Totals(BaseModel):
    """Running counts of a build; checkpointed, so a resumed run reports the whole job."""

    documents: int = 0  # integrated by this job
    skipped: int = 0  # already in the store
    chunks: int = 0
    entities: int = 0  # created
    facts: int = 0  # created
    reinforced: int = 0
    rejected: int = 0  # distinct triples (`extract.triples_rejected`)
    reasons: dict[str, int] = Field(default_factory=dict)  # `DocumentExtraction.rejected` summed
    merges: int = 0
    retired: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, extraction: DocumentExtraction, integrated: Integrated, chunks: int) -> None:
        self.documents += 1
        self.chunks += chunks
        self.entities += integrated.entities_created
        self.facts += integrated.facts_created
        self.reinforced += integrated.facts_reinforced
        self.merges += integrated.merges
        self.retired += integrated.retired
        self.rejected += triples_rejected(extraction)
        for reason, count in extraction.rejected.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.requests += extraction.requests
        self.prompt_tokens += extraction.prompt_tokens
        self.completion_tokens += extraction.completion_tokens

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Progress:
    """Reported after each document; rates are over this process's run (not a resumed past)."""

    done: int  # documents handled by the job, skipped ones included
    total: int
    totals: Totals
    elapsed_s: float
    facts_this_run: int
    tokens_this_run: int
    docs_this_run: int


@dataclass(frozen=True)
class Summary:
    totals: Totals
    total: int  # documents in the input
    elapsed_s: float  # this process's run
    resumed: bool  # continued an interrupted run of the same job


class BuildState(TypedDict):
    position: int
    totals: dict[str, int]


def order(documents: Sequence[Document]) -> list[Document]:
    """Date order, undated last, ties by source id; each content once."""
    unique = {d.source_id: d for d in documents}
    return sorted(unique.values(), key=lambda d: (d.date or _LAST, d.source_id))


def job_id(documents: Sequence[Document], extractor: Extractor) -> str:
    """The checkpoint thread: the same inputs with the same extraction settings resume."""
    o = extractor.options
    return content_id(
        "build",
        extractor.llm.model,
        extractor.schema.model_dump_json(),
        repr((o.samples, o.rules, o.max_tokens)),
        *(d.source_id for d in documents),
    )


class Builder:
    """Runs one build job; `run` resumes the job's checkpoint if it was interrupted.

    `chunker` cuts a document's source into chunks (an evaluation corpus of short passages
    keeps each whole, as the records it indexed)."""

    def __init__(
        self,
        store: GraphStore,
        extractor: Extractor,
        integrate: Integrate,
        *,
        concurrency: int,
        progress: Callable[[Progress], None] | None = None,
        chunker: Callable[[Source], list[Chunk]] = chunk_source,
    ) -> None:
        self.store = store
        self.chunker = chunker
        self.extractor = extractor
        self.integrate = integrate
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self._documents: list[Document] = []
        self._started = 0.0
        self._run_facts = self._run_tokens = self._run_docs = 0
        # position -> the document prepared and its extraction, started ahead of its step
        self._ahead: dict[int, tuple[Prepared, asyncio.Task[DocumentExtraction | None]]] = {}
        self._slots: asyncio.Semaphore | None = None

    async def run(
        self, documents: Sequence[Document], checkpointer: BaseCheckpointSaver[Any]
    ) -> Summary:
        self._documents = order(documents)
        self._started = time.monotonic()
        graph = self._graph().compile(checkpointer=checkpointer)
        config: Any = {
            "configurable": {"thread_id": job_id(self._documents, self.extractor)},
            "recursion_limit": 10 + 2 * len(self._documents),
        }
        snapshot = await graph.aget_state(config)
        resumed = bool(snapshot.next)
        start: BuildState | None = None if resumed else {"position": 0, "totals": {}}
        self._slots = asyncio.Semaphore(self.concurrency)
        try:
            final = await graph.ainvoke(start, config)
        finally:
            await self._drop_ahead()
        return Summary(
            totals=Totals.model_validate(final["totals"]),
            total=len(self._documents),
            elapsed_s=time.monotonic() - self._started,
            resumed=resumed,
        )

    def _graph(self) -> StateGraph[BuildState]:
        graph = StateGraph(BuildState)
        graph.add_node("step", self._step)
        graph.add_edge(START, "step")
        graph.add_conditional_edges("step", self._more, {True: "step", False: END})
        return graph

    def _more(self, state: BuildState) -> bool:
        return state["position"] < len(self._documents)

    async def _step(self, state: BuildState) -> BuildState:
        position = state["position"]
        totals = Totals.model_validate(state["totals"])
        window = self.concurrency * WINDOW_PER_SLOT
        end = min(position + window, len(self._documents))
        started = [self._start(k) for k in range(position, end)]
        for k in range(end, min(end + window, len(self._documents))):
            self._start(k)  # the next window queues behind this one: no idle slots at its tail
        size = end - position
        prepared = [p for p, _ in started]
        tasks = [t for _, t in started]
        try:
            i = 0
            while i < size:
                await asyncio.wait([tasks[i]])
                ready = [i]  # with the next ones that are extracted already, in order
                while ready[-1] + 1 < size and _succeeded(tasks[ready[-1] + 1]):
                    ready.append(ready[-1] + 1)
                extractions = [await tasks[k] for k in ready]
                for k, extraction, integrated in zip(
                    ready, extractions, self._integrate(prepared, ready, extractions), strict=True
                ):
                    if isinstance(integrated, Exception):
                        raise integrated  # the earlier documents are in, as one by one
                    if extraction is None or integrated is None or integrated.skipped:
                        totals.skipped += 1
                    else:
                        totals.add(extraction, integrated, len(prepared[k][1]))
                        self._run_docs += 1
                        self._run_facts += integrated.facts_created + integrated.facts_reinforced
                        self._run_tokens += extraction.prompt_tokens + extraction.completion_tokens
                    self._report(position + k + 1, totals)
                i = ready[-1] + 1
        except BaseException:
            await self._drop_ahead()
            raise
        for k in range(position, end):
            del self._ahead[k]
        return {"position": end, "totals": totals.model_dump()}

    def _start(self, k: int) -> tuple[Prepared, asyncio.Task[DocumentExtraction | None]]:
        """Document `k` prepared and its extraction running (at most `concurrency` at once)."""
        if k not in self._ahead:
            prepared = self._prepare(self._documents[k])
            self._ahead[k] = (prepared, asyncio.create_task(self._extract(*prepared)))
        return self._ahead[k]

    async def _extract(
        self, source: Source | None, chunks: list[Chunk]
    ) -> DocumentExtraction | None:
        if source is None:
            return None
        assert self._slots is not None
        async with self._slots:
            return await self.extractor.document(source.id, chunks)

    async def _drop_ahead(self) -> None:
        tasks = [t for _, t in self._ahead.values()]
        self._ahead.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _integrate(
        self,
        prepared: Sequence[Prepared],
        ready: Sequence[int],
        extractions: Sequence[DocumentExtraction | None],
    ) -> list[Integrated | Exception | None]:
        """The ready documents, in one batch when there are several (None: nothing to
        integrate); a failure of a single document raises."""
        todo = [
            (k, (source, chunks, extraction))
            for k, extraction in zip(ready, extractions, strict=True)
            if extraction is not None and (source := prepared[k][0]) is not None
            for chunks in [prepared[k][1]]
        ]
        if len(todo) > 1:
            done = self.integrate.many(self.store, [t for _, t in todo])
            outcomes = dict(zip((k for k, _ in todo), done, strict=True))
        else:
            outcomes = {k: self.integrate(self.store, *item) for k, item in todo}
        return [outcomes.get(k) for k in ready]

    def _prepare(self, document: Document) -> Prepared:
        """The source and its chunks, or (None, []) when the store holds it already (then
        it costs no model call; `integrate` checks again inside its transaction)."""
        if self.store.get_source(document.source_id) is not None:
            return None, []
        source = document.to_source()
        return source, self.chunker(source)

    def _report(self, done: int, totals: Totals) -> None:
        if self.progress is not None:
            self.progress(
                Progress(
                    done=done,
                    total=len(self._documents),
                    totals=totals.model_copy(),
                    elapsed_s=time.monotonic() - self._started,
                    facts_this_run=self._run_facts,
                    tokens_this_run=self._run_tokens,
                    docs_this_run=self._run_docs,
                )
            )
