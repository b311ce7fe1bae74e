"""ACE's modes with a scripted model over a real SQLite store: evaluation changes nothing,
online learns after each task and saves at once, offline keeps the best epoch by validation
score, and learning without ground truth never shows the gold answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from evergraph.agents.ace_adapt import Adapter
from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS, CurateOut, GenerateOut, ReflectOut
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.evals.ace_tasks import TaskItem, TaskKind, judge
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.playbooks.models import Playbook

ITEMS = [
    TaskItem(id=f"t{i}", task=f"Task {i}: what is {i} + {i}?", gold=str(2 * i)) for i in (1, 2)
]
VAL = [TaskItem(id="v1", task="Task 9: what is 9 + 9?", gold="18")]
RULES = ["Add the two numbers.", "Double the number given.", "Answer with digits only."]


class Model:
    """A scripted model: answers right when the playbook holds a rule, and its curator adds
    the rules of `RULES` one per step; `wrong_after` makes answers wrong from that many rules."""

    def __init__(self, wrong_after: int | None = None) -> None:
        self.wrong_after = wrong_after
        self.added = 0
        self.llm = ScriptedLLM([self.answer] * 200)

    def answer(self, messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        prompt = messages[-1]["content"]
        if schema is GenerateOut:
            ids = re.findall(r"\[([a-z]+-\d{5})\]", prompt)
            a, b = re.findall(r"what is (\d+) \+ (\d+)", prompt)[0]
            wrong = self.wrong_after is not None and len(ids) >= self.wrong_after
            value = int(a) + int(b) + (1 if wrong or not ids else 0)
            out = GenerateOut(reasoning="add", bullet_ids=ids, answer=str(value))
        elif schema is ReflectOut:
            tags = [{"id": i, "tag": "helpful"} for i in re.findall(r"\[([a-z]+-\d{5})\]", prompt)]
            out = ReflectOut.model_validate(
                {"error": "none", "root_cause": "r", "key_insight": "k", "bullet_tags": tags}
            )
        else:
            ops = []
            if self.added < len(RULES):
                ops = [{"op": "ADD", "section": "strategies", "content": RULES[self.added]}]
                self.added += 1
            out = CurateOut.model_validate({"operations": ops})
        return [out.model_dump_json()]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "store.db") as s:
        yield s


def empty() -> Playbook:
    return Playbook(name="math", sections=list(DEFAULT_SECTIONS))


def adapter(model: Model, store: SQLiteGraphStore, **kwargs: bool) -> Adapter:
    agent = AceAgent(model.llm, HashingEmbedder(), judge=judge(TaskKind.exact))
    return Adapter(agent, TaskKind.exact, store, **kwargs)


def test_evaluation_only_scores_and_changes_nothing(store: SQLiteGraphStore) -> None:
    model = Model()
    result = asyncio.run(adapter(model, store).evaluate(empty(), ITEMS))
    assert len(model.llm.requests) == 2  # one generator call a task
    assert store.get_playbook("math") is None
    scores = result.scores()
    assert scores["accuracy"] == 0.0 and scores["items"] == 2 and scores["ops_applied"] == 0
    assert [p.answer for p in result.predictions] == ["3", "5"]  # wrong without a playbook


def test_online_learns_after_each_task_and_saves_at_once(store: SQLiteGraphStore) -> None:
    model = Model()
    playbook, result = asyncio.run(adapter(model, store).online(empty(), ITEMS))
    stored = store.get_playbook("math")
    assert stored is not None and stored.version == playbook.version
    assert [b.content for b in stored.bullets] == RULES[:2]
    # the first task was answered with the empty playbook, the second with one rule
    assert [p.version for p in result.predictions] == [0, 1]
    assert [p.hits for p in result.predictions] == [0, 1]
    assert stored.bullets[0].helpful == 1  # tagged when the second answer used it
    origins = [e.origin for e in store.playbook_history("math")]
    assert origins == ["curator", "reflector", "curator"]


def test_offline_keeps_the_best_epoch_by_validation_score(store: SQLiteGraphStore) -> None:
    model = Model(wrong_after=3)  # one rule helps; the third makes answers wrong
    result = asyncio.run(adapter(model, store).offline(empty(), ITEMS, VAL, epochs=2))
    val = [e.val.scores()["accuracy"] for e in result.epochs if e.val]
    assert val == [1.0, 0.0] and result.best_epoch == 1
    stored = store.get_playbook("math")
    assert stored is not None
    assert [b.content for b in stored.bullets] == RULES[:2]  # epoch 2's rule reverted
    assert [b.content for b in result.playbook.bullets] == RULES[:2]
    assert any(e.origin == "revert" for e in store.playbook_history("math"))
    sizes = [e.train.bullets for e in result.epochs]
    assert sizes == [2, 3]  # playbook size per epoch is reported


def test_learning_without_ground_truth_never_shows_the_gold(store: SQLiteGraphStore) -> None:
    model = Model()
    asyncio.run(adapter(model, store, ground_truth=False).online(empty(), ITEMS))
    reflections = [r for r in model.llm.requests if r.schema is ReflectOut]
    assert len(reflections) == 2
    assert all("Correct answer" not in r.messages[-1]["content"] for r in reflections)
    stored = store.get_playbook("math")
    assert stored is not None and len(stored.bullets) == 2


def test_offline_needs_an_epoch(store: SQLiteGraphStore) -> None:
    with pytest.raises(UsageError, match="at least one epoch"):
        asyncio.run(adapter(Model(), store).offline(empty(), ITEMS, VAL, epochs=0))
