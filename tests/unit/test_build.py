"""The batch builder: date order, bounded concurrency, resume without duplicates, summary."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from pydantic import BaseModel

from evergraph.agents import build as build_module
from evergraph.agents.build import (
    Builder,
    Progress,
    Summary,
    constructor,
    order,
)
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.agents.extract_rules import ChunkOut
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.ingest import Document
from evergraph.graph.models import Chunk, Source
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import Message, Samples
from evergraph.llm.testing import ScriptedLLM

T = TypeVar("T", bound=BaseModel)
YEARS = [2021, 2019, None, 2020, 2018, 2022]  # input order is not date order


def document(i: int, year: int | None) -> Document:
    text = f"Telescope T{i} observed galaxy G{i}."
    return Document(
        key=f"doc{i}",
        title=f"doc{i}",
        text=text,
        date=datetime(year, 6, 1, tzinfo=UTC) if year else None,
        uri="",
        metadata={},
        origin=f"test:{i}",
    )


DOCS = [document(i, y) for i, y in enumerate(YEARS)]
DATE_ORDER = ["doc4", "doc1", "doc3", "doc0", "doc5", "doc2"]  # undated last


def answer(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
    """Every sample states the one fact of the document in the prompt."""
    i = messages[-1]["content"].split("Telescope T")[1].split(" ")[0]
    out = ChunkOut.model_validate(
        {
            "entities": [
                {"name": f"Telescope T{i}", "type": "Instrument"},
                {"name": f"galaxy G{i}", "type": "Object"},
            ],
            "relations": [
                {
                    "subject": f"Telescope T{i}",
                    "predicate": "observed",
                    "object": f"galaxy G{i}",
                    "quote": f"Telescope T{i} observed galaxy G{i}",
                }
            ],
        }
    )
    return [out.model_dump_json()] * n


class HookedLLM(ScriptedLLM):
    """Scripted answers, each once `before(prompt)` has run: a test's own delay or wait."""

    def __init__(self) -> None:
        super().__init__([answer] * 100)

    async def before(self, prompt: str) -> None:
        raise NotImplementedError

    async def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Samples[T]:
        await self.before(messages[-1]["content"])
        return await super().structured(messages, schema, n=n, max_tokens=max_tokens)


class SlowLLM(HookedLLM):
    """Later documents answer sooner, so extraction finishes out of date order; counts the
    documents in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0

    async def before(self, prompt: str) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        i = int(prompt.split("Telescope T")[1].split(" ")[0])
        await asyncio.sleep(0.01 * (len(YEARS) - i))
        self.in_flight -= 1


@dataclass
class Counts:
    skipped: int = 0
    entities_created: int = 0
    facts_created: int = 0
    facts_reinforced: int = 0
    merges: int = 0
    retired: int = 0


class RecordingIntegrate:
    """Stands in for the constructor: stores the source and chunks in one transaction and
    records the order and the batches (`many`, each document all or nothing); can fail on
    one document, once."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.order: list[str] = []
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(
        self,
        store: GraphStore,
        source: Source,
        chunks: Sequence[Chunk],
        extraction: DocumentExtraction,
    ) -> Counts:
        if source.title == self.fail_on:
            self.fail_on = None
            raise RuntimeError("integration failed")
        with store.transaction():
            store.upsert_sources([source])
            store.upsert_chunks(chunks)
        self.order.append(source.title)
        return Counts(
            entities_created=len(extraction.mentions), facts_created=len(extraction.facts)
        )

    def many(
        self, store: GraphStore, items: Sequence[tuple[Source, Sequence[Chunk], DocumentExtraction]]
    ) -> list[Counts | Exception]:
        self.batches.append([source.title for source, _, _ in items])
        out: list[Counts | Exception] = []
        for item in items:
            try:
                out.append(self(store, *item))
            except RuntimeError as e:
                out.append(e)
        return out


def build(
    store: GraphStore,
    integrate: RecordingIntegrate,
    checkpoints: Path,
    *,
    llm: ScriptedLLM | None = None,
    concurrency: int = 1,
    progress: list[Progress] | None = None,
) -> Summary:
    extractor = Extractor(llm or SlowLLM(), options=ExtractOptions(samples=3))
    builder = Builder(
        store,
        extractor,
        integrate,
        concurrency=concurrency,
        progress=None if progress is None else progress.append,
    )

    async def go() -> Summary:
        async with open_checkpointer(checkpoints) as saver:
            return await builder.run(DOCS, saver)

    return asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path) -> SQLiteGraphStore:
    return SQLiteGraphStore(tmp_path / "graph.db")


def test_documents_are_integrated_in_date_order_with_bounded_concurrency(
    store: SQLiteGraphStore, tmp_path: Path
) -> None:
    integrate = RecordingIntegrate()
    llm = SlowLLM()
    seen: list[Progress] = []
    build(store, integrate, tmp_path / "cp.db", llm=llm, concurrency=3, progress=seen)

    assert integrate.order == DATE_ORDER
    assert llm.most_in_flight == 3  # several documents in flight, never more than allowed
    assert [p.done for p in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].docs_this_run == 6 and seen[-1].facts_this_run == 6


class TailLLM(HookedLLM):
    """The last document of the first window (doc1, with windows of two) answers only once the
    first of the next window (doc3) has started: it can, only if that window is started ahead."""

    def __init__(self) -> None:
        super().__init__()
        self.next_started = asyncio.Event()
        self.waited_in_vain = False

    async def before(self, prompt: str) -> None:
        if "Telescope T3 " in prompt:
            self.next_started.set()
        if "Telescope T1 " in prompt:
            try:
                await asyncio.wait_for(self.next_started.wait(), timeout=5)
            except TimeoutError:
                self.waited_in_vain = True


def test_the_next_window_is_extracted_while_a_window_finishes(
    store: SQLiteGraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_module, "WINDOW_PER_SLOT", 1)  # windows of `concurrency` = 2
    integrate = RecordingIntegrate()
    llm = TailLLM()
    build(store, integrate, tmp_path / "cp.db", llm=llm, concurrency=2)
    assert not llm.waited_in_vain  # a free slot went to the next window at once
    assert integrate.order == DATE_ORDER  # still integrated in date order


def test_summary_counts(store: SQLiteGraphStore, tmp_path: Path) -> None:
    summary = build(store, RecordingIntegrate(), tmp_path / "cp.db")
    t = summary.totals
    assert (summary.total, t.documents, t.skipped, t.chunks) == (6, 6, 0, 6)
    assert (t.facts, t.entities, t.rejected) == (6, 12, 0)
    assert t.requests == 6 and t.tokens > 0
    assert not summary.resumed


@pytest.mark.parametrize("fail_on", ["doc3", "doc5"])  # in the first window; in the second
def test_resume_after_a_failure_duplicates_nothing(
    store: SQLiteGraphStore, tmp_path: Path, fail_on: str
) -> None:
    integrate = RecordingIntegrate(fail_on=fail_on)
    with pytest.raises(RuntimeError, match="integration failed"):
        build(store, integrate, tmp_path / "cp.db")
    done_before = list(integrate.order)
    assert done_before == DATE_ORDER[: DATE_ORDER.index(fail_on)]

    llm = SlowLLM()
    summary = build(store, integrate, tmp_path / "cp.db", llm=llm)

    assert summary.resumed
    assert integrate.order == DATE_ORDER  # each document integrated exactly once, in order
    assert store.stats().sources == 6
    # documents stored before the failure cost no model call on resume
    assert len(llm.requests) == 6 - len(done_before)


def test_a_finished_job_run_again_skips_everything(store: SQLiteGraphStore, tmp_path: Path) -> None:
    integrate = RecordingIntegrate()
    build(store, integrate, tmp_path / "cp.db")
    again = build(store, integrate, tmp_path / "cp.db")
    assert not again.resumed
    assert (again.totals.documents, again.totals.skipped) == (0, 6)
    assert integrate.order == DATE_ORDER


def test_order_dedupes_identical_content() -> None:
    assert [d.title for d in order([*DOCS, DOCS[0]])] == DATE_ORDER


SCHEMA = GraphSchema(
    entity_types=["Instrument", "Object"],
    relations=[RelationType(name="observed", domain="Instrument", range="Object")],
)


def build_for_real(store: GraphStore, checkpoints: Path) -> Summary:
    """The six documents through the real constructor (scripted LLM, hashing embedder)."""
    extractor = Extractor(SlowLLM(), SCHEMA, ExtractOptions(samples=3))
    builder = Builder(
        store, extractor, constructor(store, HashingEmbedder(), SCHEMA), concurrency=2
    )

    async def go() -> Summary:
        async with open_checkpointer(checkpoints) as saver:
            return await builder.run(DOCS, saver)

    return asyncio.run(go())


def test_with_the_real_constructor_facts_carry_evidence_and_time(
    store: SQLiteGraphStore, tmp_path: Path
) -> None:
    t = build_for_real(store, tmp_path / "cp.db").totals
    assert (t.documents, t.facts, t.entities, t.rejected) == (6, 6, 12, 0)
    stats = store.stats()
    assert (stats.sources, stats.facts, stats.evidence, stats.entities) == (6, 6, 6, 12)
    (telescope,) = store.find_entities("Telescope T1")
    (fact,) = store.facts_about(telescope.id)
    assert fact.valid_from == datetime(2019, 6, 1, tzinfo=UTC)
    assert fact.confidence == 0.95  # 3 of 3 samples agree: capped
    (evidence,) = store.evidence_for(fact.id)
    assert evidence.quote == "Telescope T1 observed galaxy G1" and evidence.agreement == 1.0


def test_documents_extracted_together_are_integrated_together_in_date_order(
    store: SQLiteGraphStore, tmp_path: Path
) -> None:
    integrate = RecordingIntegrate()
    seen: list[Progress] = []
    build(store, integrate, tmp_path / "cp.db", concurrency=3, progress=seen)
    assert integrate.order == DATE_ORDER
    assert any(len(b) > 1 for b in integrate.batches)  # later documents answered sooner
    assert [p.done for p in seen] == [1, 2, 3, 4, 5, 6]


def test_a_failure_in_a_batch_then_resume_duplicates_and_loses_nothing(
    store: SQLiteGraphStore, tmp_path: Path
) -> None:
    integrate = RecordingIntegrate(fail_on="doc3")
    with pytest.raises(RuntimeError, match="integration failed"):
        build(store, integrate, tmp_path / "cp.db", concurrency=3)
    assert "doc3" not in integrate.order and store.stats().sources == len(integrate.order)

    summary = build(store, integrate, tmp_path / "cp.db", concurrency=3)
    assert summary.resumed
    assert sorted(integrate.order) == sorted(DATE_ORDER)  # each document exactly once
    assert store.stats().sources == 6
