"""The application API over a real SQLite store: context without a model call, outcomes
saved as one revision, and a concurrent writer handled without asking the model again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evergraph.agents.ace_prompts import DEFAULT_SECTIONS
from evergraph.agents.ace_types import AceSettings, Feedback
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.testing import ScriptedLLM
from evergraph.memory import PlaybookMemory
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp, TagOp
from evergraph.playbooks.models import Playbook

TASK = "A refund request arrived without an order number."
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def reflection(tags: dict[str, str]) -> dict[str, Any]:
    return {
        "error": "asked twice",
        "root_cause": "did not look up the email",
        "key_insight": "look the order up by email",
        "bullet_tags": [{"id": i, "tag": t} for i, t in tags.items()],
    }


ADD = {"op": "ADD", "section": "strategies", "content": "Look the order up by the email."}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "store.db") as s:
        yield s


def memory(store: SQLiteGraphStore, llm: ScriptedLLM, **config: Any) -> PlaybookMemory:
    return PlaybookMemory(
        store, llm, HashingEmbedder(), name="support", config=AceSettings(**config)
    )


def test_context_of_an_unknown_playbook_is_empty_and_costs_no_call(
    store: SQLiteGraphStore,
) -> None:
    llm = ScriptedLLM([])
    context = memory(store, llm).get_context(TASK)
    assert context.text == "" and context.bullet_ids == [] and llm.requests == []


def test_an_outcome_is_reflected_curated_and_saved(store: SQLiteGraphStore) -> None:
    llm = ScriptedLLM([reflection({}), {"operations": [ADD]}])
    mem = memory(store, llm)
    adaptation = asyncio.run(
        mem.record_outcome(
            TASK,
            "Please send the order number.",
            Feedback(success=False, environment="the customer left"),
        )
    )
    assert adaptation.version == 1 and adaptation.llm_calls == 2
    assert adaptation.reflection is not None and len(adaptation.applied) == 1
    stored = store.get_playbook("support")
    assert stored is not None and [b.content for b in stored.bullets] == [ADD["content"]]
    assert stored.bullets[0].embedding is not None
    context = mem.get_context(TASK)
    assert context.bullet_ids == ["str-00001"] and ADD["content"] in context.text
    assert mem.get_context(TASK, budget=5).bullet_ids == []  # the budget always holds


def test_the_tags_go_to_the_bullets_the_answer_used(store: SQLiteGraphStore) -> None:
    llm = ScriptedLLM([reflection({}), {"operations": [ADD]}])
    mem = memory(store, llm)
    asyncio.run(mem.record_outcome(TASK, "a", Feedback(success=False)))
    llm2 = ScriptedLLM([reflection({"str-00001": "helpful"}), {"operations": []}])
    mem2 = memory(store, llm2)
    used = mem2.get_context(TASK).bullet_ids
    adaptation = asyncio.run(
        mem2.record_outcome(TASK, "found it", Feedback(success=True, bullet_ids=used))
    )
    assert adaptation.version == 2 and isinstance(adaptation.applied[0], TagOp)
    stored = store.get_playbook("support")
    assert stored is not None and stored.bullets[0].helpful == 1


def test_a_concurrent_write_is_merged_by_reapplying_the_ops(store: SQLiteGraphStore) -> None:
    other = "Apologise once, then act."

    def curator_while_another_writer_saves(*_: object) -> list[str]:
        assert store.get_playbook("support") is None
        base = Playbook(name="support", sections=list(DEFAULT_SECTIONS))
        done = apply_deltas(base, [AddOp(section="strategies", content=other)], now=NOW)
        store.save_playbook(done, expected_version=0)
        return [json.dumps({"operations": [ADD]})]

    llm = ScriptedLLM([reflection({}), curator_while_another_writer_saves])
    adaptation = asyncio.run(memory(store, llm).record_outcome(TASK, "a", Feedback()))
    assert len(llm.requests) == 2  # the conflict cost no model call
    stored = store.get_playbook("support")
    assert stored is not None and adaptation.version == stored.version == 2
    assert [b.content for b in stored.bullets] == [other, ADD["content"]]
