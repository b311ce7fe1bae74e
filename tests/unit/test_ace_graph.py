"""The ACE graph's control flow with a scripted model: generate -> reflect (rounds) -> curate
-> update, evaluation only, learning without ground truth, an application's own answer,
refine after curation, and resuming an interrupted step from its checkpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS, CurateOut, GenerateOut, ReflectOut
from evergraph.agents.ace_types import AceSettings, Feedback, Step
from evergraph.embed.testing import HashingEmbedder
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp, MergeOp, RejectReason, TagOp
from evergraph.playbooks.models import Playbook

NOW = datetime(2026, 1, 2, tzinfo=UTC)
TASK = "Current assets are $900 and current liabilities $300. Find the current ratio."
RULE = "Current ratio = current assets / current liabilities."


def playbook(*contents: str) -> Playbook:
    empty = Playbook(name="fin", sections=list(DEFAULT_SECTIONS))
    ops = [AddOp(section="formulas", content=c) for c in contents]
    return apply_deltas(empty, ops, now=NOW).playbook


def generated(answer: str, ids: list[str] | None = None) -> dict[str, Any]:
    return {"reasoning": "divide", "bullet_ids": ids or [], "answer": answer}


def reflected(insight: str = "divide", tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "error": "none",
        "root_cause": "used the formula",
        "key_insight": insight,
        "bullet_tags": [{"id": i, "tag": t} for i, t in (tags or {}).items()],
    }


def curated(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"operations": list(ops)}


def agent(llm: ScriptedLLM, **settings: Any) -> AceAgent:
    return AceAgent(llm, HashingEmbedder(), settings=AceSettings(**settings), clock=lambda: NOW)


def run(a: AceAgent, pb: Playbook, **kwargs: Any) -> Step:
    return asyncio.run(a.run(TASK, pb, **kwargs))


def test_a_step_generates_reflects_curates_and_applies_tags_and_ops_by_code() -> None:
    pb = playbook(RULE)
    llm = ScriptedLLM(
        [
            generated("3.00", ["for-00001", "str-00099"]),  # one id was never shown
            reflected(tags={"for-00001": "helpful", "str-00099": "harmful"}),
            curated(
                {
                    "op": "ADD",
                    "section": "checks",
                    "content": "Give two decimals.",
                    "reason": "format",
                },
                {"op": "UPDATE", "id": "mis-00042", "content": "x", "reason": "bad id"},
            ),
        ]
    )
    step = run(agent(llm), pb, feedback=Feedback(ground_truth="3.0"))

    assert llm.remaining == 0 and len(llm.requests) == 3
    assert step.answer == "3.00" and step.cited == ["for-00001"]
    assert step.correct is False  # the default judge is exact match: "3.00" is not "3.0"
    assert step.revision is not None
    new = step.revision.playbook
    assert new.get("for-00001") is not None and new.get("for-00001").helpful == 1  # type: ignore[union-attr]
    assert [b.content for b in new.in_section("checks")] == ["Give two decimals."]
    assert [e.origin for e in step.revision.entries] == ["reflector", "curator"]
    assert [r.reason for r in step.rejected] == [RejectReason.UNKNOWN_ID]
    assert isinstance(step.applied[0], TagOp)
    assert step.usage.requests == 3
    assert "Correct answer: 3.0" in llm.requests[1].messages[1]["content"]
    assert RULE in llm.requests[0].messages[1]["content"]  # the generator saw the playbook


def test_a_judge_decides_what_the_reflector_is_told() -> None:
    llm = ScriptedLLM([generated("3.00"), reflected(), curated()])
    a = AceAgent(llm, judge=lambda answer, gold: float(answer) == float(gold), clock=lambda: NOW)
    step = run(a, playbook(), feedback=Feedback(ground_truth="3.0"))
    assert step.correct is True
    assert "Outcome: correct" in llm.requests[1].messages[1]["content"]


def test_refinement_rounds_feed_the_earlier_reflection_back() -> None:
    llm = ScriptedLLM(
        [generated("3"), reflected("first"), reflected("second"), reflected("third"), curated()]
    )
    step = run(agent(llm, reflect_rounds=3), playbook(), feedback=Feedback(ground_truth="3"))
    prompts = [r.messages[1]["content"] for r in llm.requests]
    assert llm.remaining == 0 and len(prompts) == 5
    assert "Your earlier review" not in prompts[1]
    assert '"key_insight":"first"' in prompts[2] and '"key_insight":"second"' in prompts[3]
    assert step.reflection is not None and step.reflection.key_insight == "third"
    assert "insight: third" in prompts[4]  # the curator works from the last round


def test_refinement_stops_when_a_round_changes_nothing() -> None:
    llm = ScriptedLLM([generated("3"), reflected("same"), reflected("same"), curated()])
    run(agent(llm, reflect_rounds=5), playbook(), feedback=Feedback(ground_truth="3"))
    assert llm.remaining == 0 and len(llm.requests) == 4


def test_a_failed_refinement_round_still_counts() -> None:
    llm = ScriptedLLM(
        [generated("3"), reflected("first"), *["not json"] * 3, reflected("third"), curated()]
    )
    step = run(agent(llm, reflect_rounds=3), playbook(), feedback=Feedback(ground_truth="3"))
    assert llm.remaining == 0 and len(llm.requests) == 7  # round 2 took three attempts
    assert step.reflection is not None and step.reflection.key_insight == "third"


def test_evaluation_only_answers_and_changes_nothing() -> None:
    pb = playbook(RULE)
    llm = ScriptedLLM([generated("3.00", ["for-00001"])])
    step = run(agent(llm), pb, feedback=Feedback(ground_truth="3.0"), learn=False)
    assert llm.remaining == 0 and len(llm.requests) == 1
    assert step.answer == "3.00" and step.revision is None and step.applied == []


def test_without_ground_truth_the_reflector_learns_from_the_environment() -> None:
    llm = ScriptedLLM(
        [
            generated("3"),
            reflected("check units"),
            curated({"op": "ADD", "section": "checks", "content": "Check units.", "reason": "env"}),
        ]
    )
    env = "the ledger rejected 3: expected a ratio with two decimals"
    step = run(agent(llm), playbook(), feedback=Feedback(environment=env))
    reflect_prompt = llm.requests[1].messages[1]["content"]
    assert env in reflect_prompt and "Correct answer" not in reflect_prompt
    assert step.correct is None
    assert step.revision is not None and len(step.revision.playbook.bullets) == 1


def test_an_applications_answer_skips_the_generator_and_tags_the_bullets_it_used() -> None:
    pb = playbook(RULE, "Subtract liabilities from assets for working capital.")
    llm = ScriptedLLM([reflected(tags={"for-00001": "harmful", "for-00002": "harmful"}), curated()])
    feedback = Feedback(success=False, bullet_ids=["for-00001"])
    step = asyncio.run(agent(llm).run(TASK, pb, answer="300", feedback=feedback))
    assert len(llm.requests) == 2 and llm.remaining == 0
    assert step.answer == "300" and step.cited == ["for-00001"]
    assert step.revision is not None
    after = {b.id: b.harmful for b in step.revision.playbook.bullets}
    assert after == {"for-00001": 1, "for-00002": 0}  # only the bullet it used


def test_refine_runs_after_curation_and_its_merges_are_logged() -> None:
    pb = playbook("Always divide current assets by current liabilities.")
    twin = "Always divide the current assets by current liabilities."
    llm = ScriptedLLM(
        [
            generated("3"),
            reflected(),
            curated({"op": "ADD", "section": "formulas", "content": twin, "reason": "again"}),
        ]
    )
    step = run(agent(llm), pb, feedback=Feedback(ground_truth="3"))
    assert step.revision is not None
    assert [e.origin for e in step.revision.entries] == ["curator", "refine"]
    assert isinstance(step.applied[-1], MergeOp)
    kept = step.revision.playbook.bullets
    assert len(kept) == 1 and kept[0].embedding is not None  # stored with its vector


def test_a_model_that_gives_no_valid_output_changes_nothing() -> None:
    llm = ScriptedLLM(["not json"] * 9, max_retries=2)
    step = run(agent(llm), playbook(RULE), feedback=Feedback(ground_truth="3"))
    assert step.answer == "" and step.reflection is None
    assert step.revision is not None and step.revision.entries == []
    assert len(llm.requests) == 6  # generate and reflect, 3 attempts each; no curate call
    assert step.usage.requests == 2  # a failed call's usage is estimated, as one request


def test_an_interrupted_step_resumes_from_its_checkpoint() -> None:
    def crash(*_: object) -> list[str]:
        raise RuntimeError("the server went away")

    llm = ScriptedLLM([generated("3"), reflected(), crash, curated()])
    saver = InMemorySaver()
    a = AceAgent(llm, HashingEmbedder(), checkpointer=saver, clock=lambda: NOW)
    pb, feedback = playbook(), Feedback(ground_truth="3")
    with pytest.raises(RuntimeError):
        asyncio.run(a.run(TASK, pb, feedback=feedback))
    step = asyncio.run(a.run(TASK, pb, feedback=feedback))
    assert llm.remaining == 0 and len(llm.requests) == 4  # generate and reflect ran once
    assert step.answer == "3" and step.reflection is not None
    assert list(saver.storage) == []  # a finished step leaves no checkpoint behind


def test_the_same_step_twice_at_once_runs_as_two_steps() -> None:
    answers = {
        GenerateOut: generated("3"),
        ReflectOut: reflected(),
        CurateOut: curated(),
    }

    def by_role(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        role = next(r for r in answers if issubclass(schema, r))
        return [json.dumps(answers[role])]

    class Slow(ScriptedLLM):
        """Takes its time, as a server does: the two steps interleave."""

        async def structured(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.01)
            return await super().structured(*args, **kwargs)

    llm = Slow([by_role] * 6)
    a, pb, feedback = agent(llm), playbook(), Feedback(ground_truth="3")

    async def twice() -> list[Step]:
        return list(await asyncio.gather(*(a.run(TASK, pb, feedback=feedback) for _ in "ab")))

    steps = asyncio.run(twice())
    assert [s.answer for s in steps] == ["3", "3"] and llm.remaining == 0


def test_the_curator_cannot_copy_the_task_into_the_playbook() -> None:
    """The 1.5B curator made a FiNER task's option list a bullet; the step rejects it."""
    task = "Tag options: " + ",".join(f"TagNumber{i}" for i in range(20)) + ". Revenue was $5."
    copied = {"op": "ADD", "section": "checks", "content": task[:200], "reason": "the options"}
    llm = ScriptedLLM([generated("TagNumber1"), reflected(), curated(copied)])
    step = asyncio.run(agent(llm).run(task, playbook(RULE), feedback=Feedback(ground_truth="x")))
    assert [r.reason for r in step.rejected] == [RejectReason.COPIES_TASK]
    assert step.revision is None or step.revision.playbook.in_section("checks") == []
