"""ACE's modes over a task file: offline adaptation, online adaptation, evaluation only.

- offline: epochs over a training set, updating after each task; after each epoch the
  playbook is scored on a validation set, and at the end the best one (by validation
  accuracy, the earliest on a tie) is kept — by a revert in the history, so nothing is lost;
- online: answer each task, then learn from it (test-time adaptation); the prediction scored
  is the one made before the update;
- evaluation only: answer with a frozen playbook (or an empty one for the baseline).

Learning uses the gold answer as ground truth, or not (`ground_truth=False`: the reflector
judges from the answer's own reasoning and any environment feedback, ACE's label-free
setting). Every update is saved as soon as it is made, so an interruption loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel

from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_types import Feedback, Step
from evergraph.errors import UsageError
from evergraph.evals.ace_tasks import TaskItem, TaskKind, score
from evergraph.playbooks.history import HistoryEntry, Revision, revert
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.render import estimate_tokens, render

Progress = Callable[[str, int, int], None]
"""(what runs, items done, items in all)"""


class PlaybookSink(Protocol):
    """Where updates go: a `GraphStore` is one."""

    def save_playbook(self, revision: Revision, *, expected_version: int) -> None: ...

    def playbook_history(self, name: str, *, since: int = 0) -> list[HistoryEntry]: ...


class Prediction(BaseModel):
    """One task's answer and what it cost; `version` is the playbook it was made with."""

    id: str
    answer: str
    gold: str | None
    hits: int
    total: int  # 0 without a gold answer
    cited: list[str]
    version: int
    prompt_tokens: int
    completion_tokens: int
    calls: int
    seconds: float
    applied: int  # delta ops applied after it (0 when not learning)
    rejected: int


class Pass(BaseModel):
    """One pass over a task list, and the playbook it ended with."""

    label: str
    predictions: list[Prediction]
    version: int
    bullets: int
    playbook_tokens: int  # the whole playbook rendered, before any budget

    def scores(self) -> dict[str, float | int | str]:
        judged = [p for p in self.predictions if p.total]
        hits, total = sum(p.hits for p in judged), sum(p.total for p in judged)
        n = max(len(self.predictions), 1)
        return {
            "label": self.label,
            "items": len(self.predictions),
            "accuracy": hits / total if total else 0.0,
            "items_all_correct": sum(p.hits == p.total for p in judged) / max(len(judged), 1),
            "tokens_per_task": sum(p.prompt_tokens + p.completion_tokens for p in self.predictions)
            / n,
            "calls_per_task": sum(p.calls for p in self.predictions) / n,
            "seconds_per_task": sum(p.seconds for p in self.predictions) / n,
            "ops_applied": sum(p.applied for p in self.predictions),
            "ops_rejected": sum(p.rejected for p in self.predictions),
            "playbook_version": self.version,
            "playbook_bullets": self.bullets,
            "playbook_tokens": self.playbook_tokens,
        }


class Epoch(BaseModel):
    epoch: int
    train: Pass
    val: Pass | None


class OfflineResult(BaseModel):
    epochs: list[Epoch]
    best_epoch: int
    playbook: Playbook  # the kept one


class Adapter:
    """Runs the modes with one agent over one kind of task, saving updates to `sink`."""

    def __init__(
        self,
        agent: AceAgent,
        kind: TaskKind,
        sink: PlaybookSink | None = None,
        *,
        ground_truth: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.agent = agent
        self.kind = kind
        self.sink = sink
        self.ground_truth = ground_truth
        self.progress = progress or (lambda label, done, total: None)

    async def evaluate(
        self, playbook: Playbook, items: Sequence[TaskItem], label: str = "eval"
    ) -> Pass:
        """Answer every task with `playbook` frozen."""
        predictions = []
        for done, item in enumerate(items):
            self.progress(label, done, len(items))
            start = time.perf_counter()
            step = await self.agent.run(item.task, playbook, learn=False)
            predictions.append(self._prediction(item, step, playbook, start))
        self.progress(label, len(items), len(items))
        return _pass(label, predictions, playbook)

    async def online(
        self, playbook: Playbook, items: Sequence[TaskItem], label: str = "online"
    ) -> tuple[Playbook, Pass]:
        """Answer each task, then learn from it; returns the final playbook."""
        predictions = []
        for done, item in enumerate(items):
            self.progress(label, done, len(items))
            start = time.perf_counter()
            step = await self.agent.run(item.task, playbook, feedback=self._feedback(item))
            predictions.append(self._prediction(item, step, playbook, start))
            playbook = self._save(playbook, step)
        self.progress(label, len(items), len(items))
        return playbook, _pass(label, predictions, playbook)

    async def offline(
        self,
        playbook: Playbook,
        train: Sequence[TaskItem],
        val: Sequence[TaskItem],
        *,
        epochs: int,
    ) -> OfflineResult:
        """`epochs` online passes over `train`, each scored on `val`; the best one is kept
        (the last when there is no validation set)."""
        if epochs < 1:
            raise UsageError(f"offline adaptation needs at least one epoch, got {epochs}")
        results: list[Epoch] = []
        best: tuple[float, int, Playbook] | None = None  # accuracy, epoch, playbook
        for epoch in range(1, epochs + 1):
            playbook, trained = await self.online(playbook, train, f"train {epoch}")
            checked = await self.evaluate(playbook, val, f"val {epoch}") if val else None
            results.append(Epoch(epoch=epoch, train=trained, val=checked))
            accuracy = float(checked.scores()["accuracy"]) if checked else float(epoch)
            if best is None or accuracy > best[0]:
                best = (accuracy, epoch, playbook)
        _, best_epoch, best_playbook = best or (0.0, epochs, playbook)
        kept = self._keep(playbook, best_playbook)
        return OfflineResult(epochs=results, best_epoch=best_epoch, playbook=kept)

    # -- helpers --------------------------------------------------------------------------

    def _feedback(self, item: TaskItem) -> Feedback:
        return Feedback(ground_truth=item.gold if self.ground_truth else None)

    def _save(self, playbook: Playbook, step: Step) -> Playbook:
        """The playbook after the step, stored at once when it changed."""
        revision = step.revision
        if revision is None or not revision.entries:
            return playbook
        if self.sink is not None:
            self.sink.save_playbook(revision, expected_version=playbook.version)
        return revision.playbook

    def _keep(self, last: Playbook, best: Playbook) -> Playbook:
        """`best` restored as the current playbook; in the store, by reverting to it."""
        if best.version == last.version or self.sink is None:
            return best
        history = self.sink.playbook_history(last.name)
        revision = revert(last, history, best.version, now=datetime.now(UTC))
        self.sink.save_playbook(revision, expected_version=last.version)
        return revision.playbook

    def _prediction(
        self, item: TaskItem, step: Step, playbook: Playbook, start: float
    ) -> Prediction:
        hits, total = score(self.kind, step.answer, item.gold) if item.gold is not None else (0, 0)
        return Prediction(
            id=item.id,
            answer=step.answer,
            gold=item.gold,
            hits=hits,
            total=total,
            cited=step.cited,
            version=playbook.version,
            prompt_tokens=step.usage.prompt_tokens,
            completion_tokens=step.usage.completion_tokens,
            calls=step.usage.requests,
            seconds=time.perf_counter() - start,
            applied=len(step.applied),
            rejected=len(step.rejected),
        )


def _pass(label: str, predictions: list[Prediction], playbook: Playbook) -> Pass:
    whole = render(playbook, budget=10**9).text
    return Pass(
        label=label,
        predictions=predictions,
        version=playbook.version,
        bullets=len(playbook.bullets),
        playbook_tokens=estimate_tokens(whole),
    )
