"""The ACE agents' settings, the feedback an application gives, and what one step produced."""

from __future__ import annotations

from pydantic import BaseModel, Field

from evergraph.agents.ace_prompts import MAX_OPS, ReflectOut
from evergraph.llm.base import Usage
from evergraph.playbooks.deltas import DeltaOp, Rejection
from evergraph.playbooks.history import Revision
from evergraph.playbooks.refine import RefineConfig


class AceSettings(BaseModel):
    """Budgets and per-call caps. Defaults fit a 0.5B-1.5B model on two CPU cores."""

    budget: int = Field(1000, ge=0)  # playbook tokens in a generator prompt
    reflect_rounds: int = Field(1, ge=1)  # the first reflection plus refinements
    max_ops: int = Field(MAX_OPS, ge=0, le=MAX_OPS)  # curator ops asked for per step
    # Off: bullets leave by the counters (`refine` prunes the ones that keep proving harmful),
    # not on one review. Measured: the 1.5B curator removed every bullet within a step or two
    # of adding it, twice one its reflector had just tagged helpful (ACE finance, formula).
    curator_removes: bool = False
    task_chars: int = Field(2400, ge=200)  # the task is clipped here for reflector and curator
    generate_tokens: int = Field(256, ge=16)
    reflect_tokens: int = Field(256, ge=32)
    curate_tokens: int = Field(320, ge=32)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    refine: RefineConfig = Field(default_factory=RefineConfig)


class Feedback(BaseModel):
    """What the application knows about an answer; any part may be missing.

    Without `ground_truth` and `success` the reflector learns from `environment` alone (an
    execution log, a test result, a user's reply): ACE's learning without labels.
    """

    ground_truth: str | None = None
    environment: str | None = None
    success: bool | None = None
    # The bullets the answer used (`get_context(...).bullet_ids`); unknown: all rendered ones.
    bullet_ids: list[str] | None = None


class Step(BaseModel):
    """One pass of the graph over one task: the answer, and the update when it learned."""

    answer: str
    reasoning: str = ""
    cited: list[str] = Field(default_factory=list)  # valid bullet ids the answer used
    correct: bool | None = None  # None: no ground truth or verdict to judge by
    reflection: ReflectOut | None = None
    reflection_id: str | None = None
    curated: list[DeltaOp] = Field(default_factory=list)  # the curator's proposal
    applied: list[DeltaOp] = Field(default_factory=list)  # tags, curator and refine ops
    rejected: list[Rejection] = Field(default_factory=list)
    revision: Revision | None = None  # None when the step did not learn
    usage: Usage = Field(default_factory=Usage)
