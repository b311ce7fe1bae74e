"""ACE as a LangGraph graph: generate -> reflect (N rounds) -> curate -> update.

    START -+-> generate -+-> reflect <-+ (refinement rounds)
           |             |      |      |
           +-------------)------+------+-> curate -> update -> finish -> END
           (answer given)+-> finish (evaluation only: no learning)

The model proposes, code disposes (DESIGN.md): the generator cites bullet ids, the reflector
tags them and the curator proposes typed delta ops; code turns tags into TagOps, applies
every op through `apply_deltas` (rejections kept with reasons), then runs `refine` (dedup and
pruning, logged as ops too). Nothing is stored here: a step returns a `Revision`, and the
caller saves it (`PlaybookMemory`, `playbooks.adapt`), so one graph serves the app API,
training and evaluation alike.

The checkpointer keeps a learning step's progress under a thread id derived from the
playbook version and the task, so a step interrupted between calls resumes where it stopped
instead of paying for its finished calls again; a finished step's thread is deleted.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from evergraph.agents.ace_prompts import (
    CurateOut,
    GenerateOut,
    ReflectOut,
    curate_messages,
    curate_model,
    generate_messages,
    reflect_messages,
)
from evergraph.agents.ace_types import AceSettings, Feedback, Step
from evergraph.agents.calls import NodeCall
from evergraph.agents.checkpoints import memory_checkpointer
from evergraph.embed.base import Embedder
from evergraph.llm.base import LLM, Usage
from evergraph.playbooks.apply import DeltaResult, apply_deltas
from evergraph.playbooks.deltas import DeltaOp, Rejection, TagOp
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Playbook, normalise
from evergraph.playbooks.refine import prune_ops, refine
from evergraph.playbooks.render import RenderedPlaybook, render
from evergraph.playbooks.vectors import with_embeddings

Judge = Callable[[str, str], bool]
"""(answer, ground truth) -> correct"""


def exact_match(answer: str, ground_truth: str) -> bool:
    return normalise(answer) == normalise(ground_truth)


class AceState(TypedDict, total=False):
    task: str
    playbook: Playbook
    feedback: Feedback
    learn: bool
    answer: str
    reasoning: str
    rendered: RenderedPlaybook
    cited: list[str]
    correct: bool | None
    reflections: list[ReflectOut]
    round: int  # reflection rounds run
    reflection_id: str
    ops: list[DeltaOp]
    update: DeltaResult
    usage: Usage
    result: Step


class AceAgent:
    """The three roles over one model; `graph()` wires them, `run()` runs one task."""

    def __init__(
        self,
        llm: LLM,
        embedder: Embedder | None = None,
        *,
        settings: AceSettings | None = None,
        judge: Judge = exact_match,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.llm = llm
        self.embedder = embedder
        self.settings = settings or AceSettings()
        self._call = NodeCall(llm, self.settings.temperature)
        self.judge = judge
        self.clock = clock
        self._graph = self.graph(checkpointer or memory_checkpointer())

    def render(
        self, playbook: Playbook, task: str, *, budget: int | None = None
    ) -> RenderedPlaybook:
        """The playbook as the generator sees it for `task`: within the budget (default:
        the settings'), most relevant bullets first when it does not fit."""
        budget = self.settings.budget if budget is None else budget
        return render(playbook, budget=budget, task=task, embedder=self.embedder)

    # -- nodes ----------------------------------------------------------------------------

    async def generate(self, state: AceState) -> AceState:
        rendered = self.render(state["playbook"], state["task"])
        out, usage = await self._call(
            generate_messages(state["task"], rendered.text),
            GenerateOut,
            self.settings.generate_tokens,
        )
        shown = set(rendered.bullet_ids)
        cited = [i for i in dict.fromkeys(out.bullet_ids) if i in shown] if out else []
        return {
            "rendered": rendered,
            "answer": out.answer.strip() if out else "",
            "reasoning": out.reasoning.strip() if out else "",
            "cited": cited,
            "usage": state["usage"] + usage,
        }

    async def reflect(self, state: AceState) -> AceState:
        playbook, feedback = state["playbook"], state["feedback"]
        update: AceState = {}
        if "cited" not in state:  # an application's answer: the bullets it was given
            rendered = self.render(playbook, state["task"])
            known = set(rendered.bullet_ids)
            given = feedback.bullet_ids
            cited = rendered.bullet_ids if given is None else [i for i in given if i in known]
            update |= {"rendered": rendered, "cited": cited}
        cited = update.get("cited", state.get("cited", []))
        used = playbook.model_copy(
            update={"bullets": [b for b in playbook.bullets if b.id in cited]}
        )
        correct = feedback.success
        if correct is None and feedback.ground_truth is not None:
            correct = self.judge(state["answer"], feedback.ground_truth)
        earlier = state.get("reflections", [])
        out, usage = await self._call(
            reflect_messages(
                state["task"],
                render(used, budget=self.settings.budget).text if cited else "",
                answer=state["answer"],
                reasoning=state.get("reasoning", ""),
                ground_truth=feedback.ground_truth,
                correct=correct,
                environment=feedback.environment,
                task_chars=self.settings.task_chars,
                earlier=earlier[-1] if earlier else None,
            ),
            ReflectOut,
            self.settings.reflect_tokens,
        )
        # a failed refinement keeps the earlier reflection; a failed first one is none
        reflections = [*earlier, out] if out else earlier
        return update | {
            "round": state.get("round", 0) + 1,
            "correct": correct,
            "reflections": reflections,
            "reflection_id": state.get("reflection_id") or f"refl-{uuid.uuid4().hex[:12]}",
            "usage": state["usage"] + usage,
        }

    def _more_rounds(self, state: AceState) -> str:
        done = state.get("reflections", [])
        refined_away = len(done) >= 2 and done[-1] == done[-2]  # nothing left to refine
        last = state["round"] >= self.settings.reflect_rounds  # failed rounds count too
        return "curate" if last or refined_away else "reflect"

    async def curate(self, state: AceState) -> AceState:
        reflections = state.get("reflections", [])
        if not reflections or self.settings.max_ops == 0:
            return {"ops": []}
        playbook, max_ops = state["playbook"], self.settings.max_ops
        shown = state.get("rendered") or self.render(playbook, state["task"])  # as generated
        out, usage = await self._call(
            curate_messages(
                state["task"],
                shown.text,
                reflections[-1],
                sections=playbook.sections,
                max_ops=max_ops,
                task_chars=self.settings.task_chars,
                remove=self.settings.curator_removes,
            ),
            curate_model(
                playbook.sections, shown.bullet_ids, max_ops, remove=self.settings.curator_removes
            ),
            self.settings.curate_tokens,
        )
        # back to the plain op types: the checkpointer stores them by class name
        ops = CurateOut.model_validate(out.model_dump()).operations[:max_ops] if out else []
        return {"ops": ops, "usage": state["usage"] + usage}

    def update(self, state: AceState) -> AceState:
        reflections = state.get("reflections", [])
        tags = tag_ops(reflections[-1], state.get("cited", [])) if reflections else []
        step = self.apply(
            state["playbook"],
            tags,
            state.get("ops", []),
            state.get("reflection_id"),
            state["task"],
        )
        return {"update": step}

    def finish(self, state: AceState) -> AceState:
        reflections = state.get("reflections", [])
        update = state.get("update")
        result = Step(
            answer=state.get("answer", ""),
            reasoning=state.get("reasoning", ""),
            cited=state.get("cited", []),
            correct=state.get("correct"),
            reflection=reflections[-1] if reflections else None,
            reflection_id=state.get("reflection_id"),
            curated=state.get("ops", []),
            applied=update.applied if update else [],
            rejected=update.rejected if update else [],
            revision=Revision(playbook=update.playbook, entries=update.entries) if update else None,
            usage=state["usage"],
        )
        return {"result": result}

    # -- code that disposes ---------------------------------------------------------------

    def apply(
        self,
        playbook: Playbook,
        tags: Sequence[TagOp],
        ops: Sequence[DeltaOp],
        reflection_id: str | None,
        task: str = "",
    ) -> DeltaResult:
        """Tags, then the curator's ops, then refine: three logged batches, one revision.
        Curator content that copies a long run of `task` is rejected (`apply.COPY_LIMIT`).

        Pure code over `playbook`: `PlaybookMemory` re-runs it on a newer version after a
        write conflict, without asking the model again.
        """
        now = self.clock()
        entries: list[HistoryEntry] = []
        applied: list[DeltaOp] = []
        rejected: list[Rejection] = []
        state = playbook
        for origin, batch in (("reflector", tags), ("curator", ops)):
            done = apply_deltas(
                state, batch, now=now, origin=origin, reflection_id=reflection_id, task=task
            )
            state, entries = done.playbook, [*entries, *done.entries]
            applied += done.applied
            rejected += done.rejected
        if self.embedder is not None:
            refined = refine(state, self.embedder, now=now, config=self.settings.refine)
        else:  # no vectors to compare: pruning only
            removals = prune_ops(state, self.settings.refine) if self.settings.refine.prune else []
            refined = apply_deltas(state, removals, now=now, origin="refine")
        state, entries = refined.playbook, [*entries, *refined.entries]
        applied += refined.applied
        if self.embedder is not None and entries:
            state = with_embeddings(state, self.embedder)
        return DeltaResult(playbook=state, entries=entries, applied=applied, rejected=rejected)

    # -- wiring ---------------------------------------------------------------------------

    def graph(self, checkpointer: BaseCheckpointSaver[Any]) -> Any:
        """The compiled LangGraph StateGraph."""
        g = StateGraph(AceState)
        g.add_node("generate", self.generate)
        g.add_node("reflect", self.reflect)
        g.add_node("curate", self.curate)
        g.add_node("update", self.update)
        g.add_node("finish", self.finish)
        g.add_conditional_edges(
            START,
            lambda s: "reflect" if "answer" in s else "generate",
            ["generate", "reflect"],
        )
        g.add_conditional_edges(
            "generate", lambda s: "reflect" if s["learn"] else "finish", ["reflect", "finish"]
        )
        g.add_conditional_edges("reflect", self._more_rounds, ["reflect", "curate"])
        g.add_edge("curate", "update")
        g.add_edge("update", "finish")
        g.add_edge("finish", END)
        return g.compile(checkpointer=checkpointer)

    async def run(
        self,
        task: str,
        playbook: Playbook,
        *,
        feedback: Feedback | None = None,
        answer: str | None = None,
        learn: bool = True,
    ) -> Step:
        """Answer `task` with `playbook` (or take the application's `answer`) and, when
        `learn`, reflect on `feedback` and propose the update; the caller saves it."""
        feedback = feedback or Feedback()
        inputs: AceState = {
            "task": task,
            "playbook": playbook,
            "feedback": feedback,
            "learn": learn or answer is not None,
            "usage": Usage(),
        }
        if answer is not None:
            inputs["answer"] = answer
        thread = _thread_id(playbook, task, answer, feedback) if learn else uuid.uuid4().hex
        config: dict[str, Any] = {
            "configurable": {"thread_id": thread},
            "recursion_limit": 2 * self.settings.reflect_rounds + 8,
        }
        snapshot = await self._graph.aget_state(config)
        resume = bool(snapshot.next)  # interrupted earlier: carry on from its checkpoint
        final = await self._graph.ainvoke(None if resume else inputs, config)
        await self._graph.checkpointer.adelete_thread(thread)
        result: Step = final["result"]
        return result


def tag_ops(reflection: ReflectOut, cited: Sequence[str]) -> list[TagOp]:
    """The reflector's verdicts on the bullets the answer used, one TagOp each."""
    used = set(cited)
    verdicts = {t.id: t.tag for t in reflection.bullet_tags if t.id in used}
    return [
        TagOp(id=bid, tag=tag, reason=f"reflection: {reflection.root_cause}"[:300])
        for bid, tag in verdicts.items()
        if tag != "neutral"
    ]


def _thread_id(playbook: Playbook, task: str, answer: str | None, feedback: Feedback) -> str:
    digest = hashlib.sha256(
        "\x1f".join([task, answer or "", feedback.model_dump_json()]).encode()
    ).hexdigest()[:16]
    return f"{playbook.name}@{playbook.version}:{digest}"
