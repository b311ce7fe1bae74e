"""The application API: a named playbook in a store as an agent's memory.

    memory = PlaybookMemory(store, llm, embedder, name="support-bot")
    context = memory.get_context(task)             # prompt text within the budget, no LLM call
    ... the app answers with context.text ...
    await memory.record_outcome(task, answer, Feedback(ground_truth=..., environment=...))

`record_outcome` runs reflect -> curate -> apply -> refine and saves the revision in one
transaction. Another writer may have saved in between (two workers, one playbook): the
store refuses the stale write, and the same reflection's ops are applied again to the newer
playbook — code, not another model call.

It composes the ACE agents over the playbook rules, so it sits above agents/, beside the CLI
and the server that use it (DESIGN.md: playbooks/ never imports agents/).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from evergraph.agents.ace_graph import AceAgent, tag_ops
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS, ReflectOut
from evergraph.agents.ace_types import AceSettings, Feedback, Step
from evergraph.embed.base import Embedder
from evergraph.errors import PlaybookConflictError
from evergraph.graph.store.base import GraphStore
from evergraph.llm.base import LLM
from evergraph.playbooks.deltas import DeltaOp, Rejection
from evergraph.playbooks.history import Revision
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.render import RenderedPlaybook

MemoryConfig = AceSettings  # one set of knobs for the API, training and evaluation

CONFLICT_RETRIES = 3


class Adaptation(BaseModel):
    """What one recorded outcome changed, and what it cost."""

    reflection: ReflectOut | None  # None: the model gave no valid reflection
    applied: list[DeltaOp]  # tags, curator ops and refine ops, in order
    rejected: list[Rejection]
    version: int  # the playbook's version after the update
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int


class PlaybookMemory:
    def __init__(
        self,
        store: GraphStore,
        llm: LLM,
        embedder: Embedder | None,
        *,
        name: str,
        sections: Sequence[str] = DEFAULT_SECTIONS,
        config: MemoryConfig | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.sections = list(sections)
        self.agent = AceAgent(llm, embedder, settings=config)

    def playbook(self) -> Playbook:
        """The stored playbook, or a new empty one with this memory's sections."""
        return self.store.get_playbook(self.name) or Playbook(
            name=self.name, sections=self.sections
        )

    def get_context(self, task: str, *, budget: int | None = None) -> RenderedPlaybook:
        """The bullets most relevant to `task`, within `budget` tokens (default: config's)."""
        return self.agent.render(self.playbook(), task, budget=budget)

    async def record_outcome(self, task: str, answer: str, feedback: Feedback) -> Adaptation:
        """Learn from an answer the application gave; returns what changed."""
        playbook = self.playbook()
        step = await self.agent.run(task, playbook, answer=answer, feedback=feedback)
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._save(playbook, step)
            except PlaybookConflictError:
                playbook = self.playbook()
                step = self._reapply(playbook, step, task)
        return self._save(playbook, step)

    def _save(self, playbook: Playbook, step: Step) -> Adaptation:
        revision = step.revision
        if revision is not None and revision.entries:
            self.store.save_playbook(revision, expected_version=playbook.version)
        return Adaptation(
            reflection=step.reflection,
            applied=step.applied,
            rejected=step.rejected,
            version=revision.playbook.version if revision else playbook.version,
            llm_calls=step.usage.requests,
            prompt_tokens=step.usage.prompt_tokens,
            completion_tokens=step.usage.completion_tokens,
        )

    def _reapply(self, playbook: Playbook, step: Step, task: str) -> Step:
        """The same reflection's tags and curator ops over a newer `playbook`."""
        tags = tag_ops(step.reflection, step.cited) if step.reflection else []
        done = self.agent.apply(playbook, tags, step.curated, step.reflection_id, task)
        revision = Revision(playbook=done.playbook, entries=done.entries)
        return step.model_copy(
            update={"applied": done.applied, "rejected": done.rejected, "revision": revision}
        )
