"""The graph builder with a real local model: structure, evidence and timestamps; kill -9.

Uses the servers of `test_llm_real` (EVERGRAPH_TEST_VLLM_URL, else EVERGRAPH_TEST_LLAMACPP_URL;
skipped without one unless EVERGRAPH_REQUIRE_SERVICES=1). The test model is a 0.5B model that
invents facts, so these tests check structure and flow, never world knowledge. Kept short for
2-core machines: a few abstracts, two samples, a small max_tokens (a sample cut off there keeps
its complete relations). The first test runs without a schema: the 0.5B model types entities
against the astro schema's domains too often to be sure of a fact in two abstracts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergraph.agents.build import Builder, Summary, constructor
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.ingest import read_documents
from evergraph.graph.models import Evidence, Source
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.openai_compat import OpenAICompatLLM
from tests.integration.test_llm_real import Server

pytestmark = pytest.mark.llm

ROOT = Path(__file__).resolve().parents[2]
ABSTRACTS = ROOT / "examples/astro/abstracts.jsonl"
SCHEMA = ROOT / "examples/astro/schema.json"
MAX_TOKENS = 250  # a few relations; a sample cut off keeps the ones it completed


def first_abstracts(tmp_path: Path, k: int) -> Path:
    path = tmp_path / "abstracts.jsonl"
    path.write_text("".join(ABSTRACTS.read_text(encoding="utf-8").splitlines(True)[:k]))
    return path


def all_evidence(store: SQLiteGraphStore) -> list[Evidence]:
    evidence: list[Evidence] = []
    after = ""
    while True:
        page, after = store.scan(Evidence, after=after)
        evidence += page
        if not after:
            return evidence


def test_abstracts_build_a_graph_with_evidence_and_time(
    fastest_server: Server, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    settings = fastest_server.settings.model_copy(update={"max_tokens": MAX_TOKENS})
    store = SQLiteGraphStore(tmp_path / "graph.db")
    documents = list(read_documents([first_abstracts(tmp_path, 2)]))
    embedder = HashingEmbedder()

    async def go() -> Summary:
        async with OpenAICompatLLM(settings, cache=None) as llm:
            extractor = Extractor(llm, None, ExtractOptions(samples=2, max_tokens=MAX_TOKENS))
            builder = Builder(
                store,
                extractor,
                constructor(store, embedder, GraphSchema()),
                concurrency=2,
            )
            async with open_checkpointer(tmp_path / "cp.db") as saver:
                return await builder.run(documents, saver)

    summary = asyncio.run(go())
    t = summary.totals
    assert (t.documents, t.skipped) == (2, 0)
    assert t.requests >= 2 and t.prompt_tokens > 0 and t.completion_tokens > 0
    assert t.facts + t.rejected > 0  # the model proposed triples and the rules judged them
    stats = store.stats()
    assert stats.sources == 2 and stats.chunks >= 2 and stats.entities > 0
    assert stats.facts == t.facts
    sources = {d.source_id: store.get_source(d.source_id) for d in documents}
    for source in sources.values():
        assert isinstance(source, Source) and source.published_at is not None
    for ev in all_evidence(store):
        source = sources[ev.source_id]
        assert source is not None
        assert ev.quote and " ".join(ev.quote.split()) in " ".join(source.text.split())
        assert 0 < ev.agreement <= 1 and ev.model == settings.model
        fact = store.get_fact(ev.fact_id)
        assert fact is not None and 0 < fact.confidence < 1
        assert fact.recorded_at >= started
        assert fact.valid_from == source.published_at
    store.close()


def test_kill_9_mid_batch_then_resume_loses_and_duplicates_nothing(
    fastest_server: Server, tmp_path: Path
) -> None:
    k = 3
    docs = first_abstracts(tmp_path, k)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGRAPH_")}
    env |= {
        "EVERGRAPH_HOME": str(tmp_path / "home"),
        "EVERGRAPH_LLM__BASE_URL": fastest_server.settings.base_url,
        "EVERGRAPH_LLM__MODEL": fastest_server.settings.model,
        "EVERGRAPH_LLM__STRUCTURED_MODE": fastest_server.settings.structured_mode.value,
        "EVERGRAPH_LLM__MAX_TOKENS": str(MAX_TOKENS),
        "EVERGRAPH_LLM__MAX_CONCURRENCY": "1",  # one document at a time: a clear middle
    }
    command = [sys.executable, "-m", "evergraph", "ingest", str(docs), "--schema", str(SCHEMA),
               "--samples", "2"]  # fmt: skip
    store_path = tmp_path / "home" / "evergraph.db"

    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            if store_path.exists() and _sources(store_path) >= 1:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    before = _sources(store_path)
    assert 1 <= before < k

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "(resumed)" in resumed.stdout  # the checkpoint was found and continued

    store = SQLiteGraphStore(store_path)
    try:
        assert store.stats().sources == k  # nothing lost
        evidence = all_evidence(store)
        keys = [(e.fact_id, e.source_id, e.chunk_id, e.quote) for e in evidence]
        assert len(keys) == len(set(keys))  # nothing duplicated
        upserted = [c.item_id for c in store.changes(limit=100_000) if c.kind == "source"]
        assert len(upserted) == len(set(upserted)) == k  # each document integrated once
    finally:
        store.close()


def _sources(path: Path) -> int:
    store = SQLiteGraphStore(path)
    try:
        return store.stats().sources
    finally:
        store.close()
