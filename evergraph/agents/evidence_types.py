"""The EvidenceLoop's settings and typed results: an `Answer` citing ledger entries, or a
`Refusal` naming the hops that lack evidence (a result, not an exception)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from evergraph.llm.base import Usage
from evergraph.retrieval.ledger import QUOTE_MATCH, Ledger

REF = re.compile(r"#(\d+)")  # "#2" in a planned hop stands for hop 2's answer


class LoopSettings(BaseModel):
    """Budgets and per-call caps. Defaults fit a 0.5B-1.5B model on two CPU cores."""

    max_rounds: int = Field(4, ge=1)  # retrieve-read rounds
    max_tokens: int = Field(12_000, ge=1)  # prompt + completion tokens over the whole loop
    read_k: int = Field(4, ge=1)  # chunks read per open hop per round
    passage_chars: int = Field(800, ge=100)  # a passage is cut here in the read prompt
    quote_match: float = Field(QUOTE_MATCH, ge=50.0, le=100.0)
    plan_tokens: int = Field(128, ge=16)
    read_tokens: int = Field(200, ge=32)
    answer_tokens: int = Field(96, ge=16)
    temperature: float = Field(0.0, ge=0.0, le=2.0)


class HopStatus(StrEnum):
    OPEN = "open"  # no evidence yet
    SUPPORTED = "supported"
    CONTESTED = "contested"  # evidence for two answers, neither ahead


class Hop(BaseModel):
    index: int = Field(ge=1)
    question: str  # as planned; "#k" stands for hop k's answer
    query: str = ""  # the last search query sent for it
    answer: str | None = None
    status: HopStatus = HopStatus.OPEN
    attempts: int = 0
    exhausted: bool = False  # the last search found no chunk it had not read
    read: list[str] = Field(default_factory=list)  # chunk ids read for it

    def depends_on(self) -> set[int]:
        """Earlier hops this one names; a reference forward or to itself is ignored."""
        return {int(n) for n in REF.findall(self.question) if 0 < int(n) < self.index}


class TraceEvent(BaseModel):
    node: str
    round: int
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class Answer(BaseModel):
    text: str
    citations: list[str]  # ids of ledger entries
    ledger: Ledger
    hops: list[Hop]
    trace: list[TraceEvent]
    usage: Usage


class Refusal(BaseModel):
    reason: str
    missing_hops: list[Hop]
    ledger: Ledger
    hops: list[Hop]
    trace: list[TraceEvent]
    usage: Usage
