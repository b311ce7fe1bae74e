"""What the ACE roles ask the model, and the typed answers they accept.

Generator: answer with the playbook, cite the bullets used. Reflector: diagnose the outcome,
tag the cited bullets. Curator: propose a few typed delta ops (`playbooks.deltas`), never a
rewrite. Written for 0.5B-1.5B local models: short instructions, small JSON outputs, and the
task text clipped in the reflector and curator prompts (it is most of a call's cost on CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from evergraph.llm.base import Message
from evergraph.llm.enums import with_enums
from evergraph.playbooks.deltas import AddOp, DeltaOp, MergeOp, RemoveOp, UpdateOp

# The sections a new playbook declares: what ACE's finance playbooks hold. Ids take the first
# three letters: str-00001, for-00002, mis-00003, che-00004.
DEFAULT_SECTIONS = ("strategies", "formulas", "mistakes", "checks")

EMPTY_PLAYBOOK = "(the playbook is empty)"
# Ops a curator may propose at once. In the schema, so that a server enforcing it stops the
# model there: the 1.5B model otherwise ran every curator call on to its token cap.
MAX_OPS = 3


class GenerateOut(BaseModel):
    reasoning: str = Field(description="your working, in one or two short sentences")
    bullet_ids: list[str] = Field(
        description="ids of the playbook bullets you used, e.g. str-00001; empty if none"
    )
    answer: str = Field(description="the final answer only, in the format the task asks for")


class BulletTag(BaseModel):
    id: str
    tag: Literal["helpful", "harmful", "neutral"]


class ReflectOut(BaseModel):
    error: str = Field(description="what went wrong in the answer, or 'none'")
    root_cause: str = Field(description="why it went wrong (or why it went right)")
    key_insight: str = Field(description="one reusable rule that gets such tasks right")
    bullet_tags: list[BulletTag] = Field(
        description="a verdict for each playbook bullet the answer used"
    )


_OPERATIONS = (
    "a few small edits of the playbook, each with a reason; empty if the playbook already says it"
)


class CurateOut(BaseModel):
    operations: list[DeltaOp] = Field(max_length=MAX_OPS, description=_OPERATIONS)


def curate_model(
    sections: Sequence[str], ids: Sequence[str], max_ops: int, *, remove: bool = False
) -> type[CurateOut]:
    """`CurateOut` limited to the edits that can apply: the playbook's sections and the ids the
    curator was shown, ADD alone on an empty playbook, no MERGE below two bullets, REMOVE only
    when asked; TAG is the reflector's. With a fixed schema the 1.5B curator of an empty
    playbook proposed REMOVE of ids "1", "2", "3" (every one rejected, the playbook never
    grew)."""
    ops: Any = with_enums(AddOp, "CuratorAdd", section=sections)
    if ids:
        ops |= with_enums(UpdateOp, "CuratorUpdate", id=ids)
    if ids and remove:
        ops |= with_enums(RemoveOp, "CuratorRemove", id=ids)
    if len(ids) >= 2:
        ops |= with_enums(MergeOp, "CuratorMerge", ids=ids, keep=ids)
    item: Any = Annotated[ops, Field(discriminator="op")] if ids else ops
    listed = (list[item], Field(max_length=max_ops, description=_OPERATIONS))
    return create_model("PlaybookCurateOut", __base__=CurateOut, operations=listed)


GENERATE_SYSTEM = """\
Solve the task. A playbook of strategies learned from earlier tasks is given: use the bullets \
that apply and list their ids in bullet_ids. Give the final answer exactly in the format the \
task asks for."""

REFLECT_SYSTEM = """\
You review an answer to a task. Say what went wrong (or 'none'), why, and one reusable rule \
that gets such tasks right. Tag each playbook bullet the answer used: helpful if it led \
towards the correct answer, harmful if it is wrong and misled the answer, neutral if it does \
not apply to this task or made no difference."""

REFINE_NOTE = """\
Your earlier review is below. Check it against the feedback and make it more precise and \
more general; keep what was right."""

CURATE_SYSTEM = """\
You maintain a playbook of short, reusable rules for a kind of task. From the review of one \
answer, propose at most {max_ops} edits: ADD a new rule to a section (sections: {sections}), \
UPDATE a rule's content by id, MERGE ids that say the same into one (keep one of them), \
{remove}Give each edit a reason. Only add what the playbook does not \
already say; return no operations if nothing is new. Rules are general (no numbers or names \
from this one task) and short: one sentence each, and a reason of a few words."""
# No example edit: the 0.5B curator copied the one given ("Round only the final result to 2
# decimals.") into the playbook, and every later answer followed it (online accuracy 0.267 ->
# 0); the response schema (`curate_model`) shows the format instead.


def clip(text: str, chars: int) -> str:
    """Head and tail of a long text: tasks put the instructions first and the question last."""
    if len(text) <= chars:
        return text
    half = chars // 2
    return f"{text[:half]} [...] {text[-half:]}"


def _outcome(answer: str, ground_truth: str | None, correct: bool | None, env: str | None) -> str:
    lines = [f"Answer given: {answer}"]
    if ground_truth is not None:
        lines.append(f"Correct answer: {ground_truth}")
    if correct is not None:
        lines.append(f"Outcome: {'correct' if correct else 'wrong'}")
    if env:
        lines.append(f"Feedback from the environment: {env}")
    if ground_truth is None and correct is None and not env:
        lines.append("No feedback: judge the answer on its own reasoning.")
    return "\n".join(lines)


def generate_messages(task: str, playbook: str) -> list[Message]:
    return [
        {"role": "system", "content": GENERATE_SYSTEM},
        {"role": "user", "content": f"Playbook:\n{playbook or EMPTY_PLAYBOOK}\n\nTask:\n{task}"},
    ]


def reflect_messages(
    task: str,
    playbook: str,
    *,
    answer: str,
    reasoning: str,
    ground_truth: str | None,
    correct: bool | None,
    environment: str | None,
    task_chars: int,
    earlier: ReflectOut | None = None,
) -> list[Message]:
    """`earlier` is the previous round's reflection, to be refined."""
    parts = [
        f"Task:\n{clip(task, task_chars)}",
        f"Playbook bullets used:\n{playbook or EMPTY_PLAYBOOK}",
        f"Reasoning given: {reasoning}" if reasoning else "",
        _outcome(answer, ground_truth, correct, environment),
    ]
    if earlier is not None:
        parts.append(f"{REFINE_NOTE}\n{earlier.model_dump_json()}")
    return [
        {"role": "system", "content": REFLECT_SYSTEM},
        {"role": "user", "content": "\n\n".join(p for p in parts if p)},
    ]


def curate_messages(
    task: str,
    playbook: str,
    reflection: ReflectOut,
    *,
    sections: Sequence[str],
    max_ops: int,
    task_chars: int,
    remove: bool = False,
) -> list[Message]:
    removal = "REMOVE a rule that is wrong. " if remove else ""
    system = CURATE_SYSTEM.format(max_ops=max_ops, sections=", ".join(sections), remove=removal)
    user = (
        f"Playbook:\n{playbook or EMPTY_PLAYBOOK}\n\n"
        f"Task:\n{clip(task, task_chars)}\n\n"
        f"Review: error: {reflection.error}; cause: {reflection.root_cause}; "
        f"insight: {reflection.key_insight}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
