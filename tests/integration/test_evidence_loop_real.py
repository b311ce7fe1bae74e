"""The EvidenceLoop end to end with a real local model, on a real HotpotQA question over the
20 paragraphs of the first two questions.

The server is the `fastest_server` fixture (conftest.py): vLLM when EVERGRAPH_TEST_VLLM_URL is
set, else llama.cpp; a missing server skips unless EVERGRAPH_REQUIRE_SERVICES=1. The
test model invents facts, so this checks structure, never world knowledge: the outcome is an
Answer whose citations point at ledger entries quoting their chunks verbatim, or a Refusal
that names the hops lacking evidence. One question, two rounds of two passages at most: a
handful of calls: 35 s on vLLM, over 6 min on llama.cpp (n samples are n requests there).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evergraph.agents.evidence_loop import Answer, HopStatus, LoopSettings, Refusal, ask
from evergraph.embed.testing import HashingEmbedder
from evergraph.evals.multihop_data import corpus, read_items
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.retrieval.index import index_passages
from tests.integration.test_llm_real import Server

pytestmark = pytest.mark.llm

HOTPOT = (
    Path(__file__).resolve().parents[3] / "shared/data/hotpotqa/hotpotqa_dev_distractor_100.jsonl"
)
SETTINGS = LoopSettings(max_rounds=2, read_k=2)


def test_a_real_question_ends_in_a_cited_answer_or_a_reasoned_refusal(
    fastest_server: Server,
    tmp_path: Path,
) -> None:
    if not HOTPOT.is_file():
        pytest.skip(f"{HOTPOT} is not here")
    items = read_items(HOTPOT)[:2]
    passages = corpus(items)
    bodies = {p.chunk_id: p.body for p in passages}
    embedder = HashingEmbedder(dim=256)  # retrieval quality is tested elsewhere

    async def scenario() -> list[Answer | Refusal]:
        llm = OpenAICompatLLM(fastest_server.settings, cache=None)
        try:
            with SQLiteGraphStore(tmp_path / "store.db") as store:
                index_passages(store, embedder, passages)
                return [
                    await ask(
                        i.question, store=store, embedder=embedder, llm=llm, settings=SETTINGS
                    )
                    for i in items[:1]
                ]
        finally:
            await llm.aclose()

    for result in asyncio.run(scenario()):
        assert result.trace[0].node == "plan" and result.usage.requests >= 2
        assert all(e.quote and e.quote in bodies[e.chunk_id] for e in result.ledger.entries)
        if isinstance(result, Answer):
            assert result.text and result.citations
            assert all(result.ledger.get(c) is not None for c in result.citations)
            assert all(h.status is HopStatus.SUPPORTED for h in result.hops)
        else:
            assert result.reason and result.missing_hops
            assert all(h.status is not HopStatus.SUPPORTED for h in result.missing_hops)
            assert all(f"hop {h.index}" in result.reason for h in result.missing_hops)
