"""One offline ACE epoch with a real local model on three ace_finance formula items.

The server is the `fastest_server` fixture (conftest.py): vLLM when EVERGRAPH_TEST_VLLM_URL
is set, else llama.cpp; a missing server skips unless EVERGRAPH_REQUIRE_SERVICES=1. The
0.5B test model's lessons are not judged, only their form: the epoch ends with a valid
playbook saved in a SQLite store, every change in its history, no two bullets of a section
saying the same, and the store's copy equal to the one returned. Three calls a task, capped
at small max_tokens: a few minutes on llama.cpp with the machine to itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evergraph.agents.ace_adapt import Adapter, OfflineResult
from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS
from evergraph.agents.ace_types import AceSettings
from evergraph.embed.testing import HashingEmbedder
from evergraph.evals.ace_tasks import TaskKind, judge, read_tasks
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.playbooks.models import Playbook, normalise
from evergraph.playbooks.refine import dedup_ops
from tests.integration.test_llm_real import Server

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]  # llama.cpp on 2 shared cores

FORMULA = (
    Path(__file__).resolve().parents[3] / "shared/data/ace_finance/formula_train_subset_500.jsonl"
)
SETTINGS = AceSettings(generate_tokens=160, reflect_tokens=160, curate_tokens=200, max_ops=1)


def test_one_offline_epoch_gives_a_valid_deduplicated_stored_playbook(
    fastest_server: Server, tmp_path: Path
) -> None:
    if not FORMULA.is_file():
        pytest.skip(f"{FORMULA} is not here")
    items = read_tasks(FORMULA)
    train, val = items[:2], items[2:3]
    embedder = HashingEmbedder(dim=256)  # dedup needs vectors, not their quality

    async def scenario(store: SQLiteGraphStore) -> OfflineResult:
        # the fixture's 80-token cap would cut every answer: the agent caps each call itself
        # (and on two shared cores a 200-token answer can take longer than the 300 s default)
        update = {"max_tokens": 256, "timeout_s": 900.0}
        llm_settings = fastest_server.settings.model_copy(update=update)
        llm = OpenAICompatLLM(llm_settings, cache=None)
        try:
            agent = AceAgent(llm, embedder, settings=SETTINGS, judge=judge(TaskKind.formula))
            adapter = Adapter(agent, TaskKind.formula, store)
            empty = Playbook(name="formula", sections=list(DEFAULT_SECTIONS))
            return await adapter.offline(empty, train, val, epochs=1)
        finally:
            await llm.aclose()

    with SQLiteGraphStore(tmp_path / "store.db") as store:
        result = asyncio.run(scenario(store))
        stored = store.get_playbook("formula")
        history = store.playbook_history("formula")

    [epoch] = result.epochs
    assert [p.id for p in epoch.train.predictions] == [i.id for i in train]
    assert epoch.val is not None and len(epoch.val.predictions) == 1
    assert all(p.calls >= 3 for p in epoch.train.predictions)  # generate, reflect, curate
    playbook = result.playbook
    if not playbook.bullets:  # the model proposed nothing that applied: nothing stored
        assert stored is None and history == []
        return
    assert stored is not None and stored.version == playbook.version == history[-1].seq
    assert all(b.same_record(c) for b, c in zip(stored.bullets, playbook.bullets, strict=True))
    assert Playbook.model_validate(stored.model_dump()) == stored
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    for section in stored.sections:
        texts = [normalise(b.content) for b in stored.in_section(section)]
        assert len(set(texts)) == len(texts)
    assert dedup_ops(stored, embedder, SETTINGS.refine) == []  # refine left no near-twins
    assert all(b.embedding is not None for b in stored.bullets)
