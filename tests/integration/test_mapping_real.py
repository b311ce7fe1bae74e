"""The mapping job with a real local model on a few astro-ph abstracts, then the report.

Uses the servers of `test_llm_real` (skipped without one unless EVERGRAPH_REQUIRE_SERVICES=1)
and the kg-for-science data in ../shared/data (skipped when absent). The 0.5B test model
invents and mistypes concepts, so this checks structure and flow: every paper is mapped or
recorded as failed, concepts carry the schema's types and their papers' dates, and the report
is written. Four abstracts, one sample each, on llama.cpp: a few minutes on 2 cores.

llama.cpp, not vLLM: the response schema lists relations before entities, and with vLLM's
guided decoding the 0.5B model fills its 400 tokens with relations, so every sample was cut
off before its concepts (none kept from these four abstracts; llama.cpp kept 9 from two).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from evergraph.agents.build import constructor
from evergraph.agents.extract import ExtractOptions
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph import views
from evergraph.graph.ingest import read_documents
from evergraph.graph.models import Entity, Fact
from evergraph.graph.schema import load_schema
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.mapping.concepts import APPEARS_IN, CO_OCCURS
from evergraph.mapping.job import FAILURES, MapJob, papers
from evergraph.mapping.options import MapOptions
from evergraph.mapping.report import ReportOptions, write_report
from tests.integration.test_llm_real import require_server

pytestmark = pytest.mark.llm

DATA = Path(__file__).resolve().parents[3] / "shared/data/arxiv_astroph_kg4s"
ABSTRACTS = DATA / "arxiv_astroph_1000.jsonl"
SCHEMA = DATA / "kg4s_schema.json"
PAPERS = 4
MAX_TOKENS = 400  # the 0.5B model writes about 250; cut off, a sample loses its entities


@pytest.fixture
def abstracts(tmp_path: Path) -> Path:
    if not ABSTRACTS.is_file():
        pytest.skip(f"{ABSTRACTS} is missing (the shared kg-for-science data)")
    path = tmp_path / "papers.jsonl"
    lines = ABSTRACTS.read_text(encoding="utf-8").splitlines(True)[:PAPERS]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_abstracts_map_to_dated_typed_concepts_and_a_report(
    abstracts: Path, tmp_path: Path
) -> None:
    settings = require_server("llamacpp").settings.model_copy(update={"max_tokens": MAX_TOKENS})
    schema = load_schema(SCHEMA)
    documents = list(read_documents([abstracts]))
    out = tmp_path / "map"
    store = SQLiteGraphStore(out / "graph.db")

    def llm() -> AbstractAsyncContextManager[LLM]:
        return OpenAICompatLLM(settings, cache=None)

    job = MapJob(
        store,
        llm,
        schema,
        ExtractOptions(samples=1, max_tokens=MAX_TOKENS),
        constructor(store, HashingEmbedder(), schema),
        out,
        MapOptions(concurrency=2, attempts=2, backoff_s=0.5),
    )
    summary = asyncio.run(job.run(documents))
    t = summary.build.totals
    assert t.documents + len(summary.failed) == PAPERS
    assert t.requests >= t.documents and t.prompt_tokens > 0
    if summary.failed:
        assert len((out / FAILURES).read_text().splitlines()) == len(summary.failed)

    dates = {d.key: d.date for d in papers(documents)}
    entities = {e.id: e for e in views.records(store, Entity)}
    facts = list(views.records(store, Fact))
    appears = [f for f in facts if f.predicate == APPEARS_IN]
    assert appears, f"no concept was kept from {PAPERS} abstracts"
    for f in appears:
        assert f.object_value in dates and f.valid_from == dates[f.object_value]
        assert entities[f.subject_id].type in schema.entity_types
    pairs = [f for f in facts if f.predicate == CO_OCCURS]
    for f in pairs:
        assert f.object_id in entities and f.valid_from is not None

    written = write_report(store, tmp_path / "report", ReportOptions(min_papers=2, png=False))
    html = written[0].read_text(encoding="utf-8")
    assert html.count('"name"') >= len({f.subject_id for f in appears}) > 0
    store.close()
