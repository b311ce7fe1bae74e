"""The HTTP API with a real local model: a document ingested through a job, then a question
asked over HTTP. The model (the `fastest_server` fixture: vLLM if configured, else llama.cpp;
skipped without one unless EVERGRAPH_REQUIRE_SERVICES=1) is a 0.5B model that may extract
nothing useful: this checks flow and structure, never world knowledge. One document, one
sample, one round of two passages: five calls, minutes on llama.cpp on two shared cores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from evergraph.agents.evidence_types import LoopSettings
from evergraph.client import EvergraphClient
from evergraph.config import Settings
from evergraph.embed.testing import HashingEmbedder
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.server.app import create_app
from evergraph.server.schemas import DocumentIn, JobState
from evergraph.server.services import ServerOptions, Services
from tests.integration.test_llm_real import Server
from tests.unit.server_fixtures import serving

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]  # llama.cpp on 2 shared cores

TEXT = (
    "Ada Lovelace wrote the first published program for the Analytical Engine. "
    "The Analytical Engine was designed by Charles Babbage in London."
)


def test_ingest_and_ask_over_http_with_a_real_model(fastest_server: Server, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, llm=fastest_server.settings)
    settings.extract.samples = 1
    settings.extract.max_tokens = 256  # two short sentences
    services = Services(
        settings=settings,
        llm=OpenAICompatLLM(settings.llm, cache=None),
        embedder_factory=lambda: HashingEmbedder(dim=256),
        options=ServerOptions(rate=1000, burst=1000),
        loop=LoopSettings(max_rounds=1, read_k=2),
    )
    document = DocumentIn(
        key="ada", title="Ada Lovelace", text=TEXT, date=datetime(1843, 1, 1, tzinfo=UTC)
    )
    with (
        serving(create_app(services)) as url,
        EvergraphClient(url, namespace="real", timeout=1500) as eg,  # a busy shared server
    ):
        job = eg.wait(eg.add_documents([document]), timeout=1200, poll=1.0)
        assert job.state is JobState.DONE, job.error
        assert job.totals is not None and job.totals.documents == 1
        assert job.totals.requests >= 1 and job.totals.chunks >= 1
        assert eg.search("Analytical Engine").hits[0].text.startswith("Ada Lovelace wrote")
        asked = eg.ask("Who designed the Analytical Engine?")
        metrics = httpx.get(f"{url}/metrics").text
    result = asked.answer or asked.refusal
    assert result is not None and asked.kind == ("answer" if asked.answer else "refusal")
    assert result.usage.requests >= 2 and result.trace[0].node == "plan"
    assert all(e.quote in TEXT for e in result.ledger.entries)
    if asked.answer is not None:
        assert asked.answer.text and asked.answer.citations
        assert all(asked.answer.ledger.get(c) is not None for c in asked.answer.citations)
    else:
        assert asked.refusal is not None and asked.refusal.missing_hops
    assert 'evergraph_llm_tokens_total{kind="prompt",operation="ingest"}' in metrics
