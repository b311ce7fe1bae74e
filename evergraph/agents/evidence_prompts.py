"""What the EvidenceLoop asks the model, and the typed answers it accepts.

Written for 0.5B-1.5B local models: one short instruction, an example where it helps, small
JSON outputs (a plan is ~30 tokens, a read ~50, an answer ~20), one passage per read. A quote
only has to point at the words: the ledger widens it to the chunk's whole sentences
(`retrieval.ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from evergraph.llm.base import Message
from evergraph.retrieval.hybrid import Hit
from evergraph.retrieval.ledger import LedgerEntry

MAX_HOPS = 4  # MuSiQue's longest chains
MAX_CLAIMS = 2


class PlanOut(BaseModel):
    hops: list[str] = Field(
        min_length=1,
        max_length=MAX_HOPS,
        description="sub-questions in order; #1, #2 stand for the answers of earlier ones",
    )


class ClaimOut(BaseModel):
    quote: str = Field(description="the words of that passage that state it (at most 20), copied")
    answer: str = Field(description="the answer in a few words, as the quote writes it")


class ReadOut(BaseModel):
    claims: list[ClaimOut] = Field(
        max_length=MAX_CLAIMS, description="empty when the passage does not state the answer"
    )


class AnswerOut(BaseModel):
    answer: str = Field(description="a few words; yes or no for a yes/no question")
    citations: list[str] = Field(description="ids of the evidence used, e.g. E1")


PLAN_SYSTEM = """\
Split the question into the simple sub-questions that answer it, in order. Each sub-question \
asks for one fact. Write #1, #2 for the answer of an earlier sub-question: a later \
sub-question never repeats what an earlier one describes. A simple question is one \
sub-question.
Example: "Which university did the director of Inception attend?" -> \
{"hops": ["Who directed Inception?", "Which university did #1 attend?"]}
Example: "What is the capital of the country where the Eiffel Tower stands?" -> \
{"hops": ["Which country is the Eiffel Tower in?", "What is the capital of #1?"]}
Example: "Are Tokyo and Kyoto in the same country?" -> \
{"hops": ["Which country is Tokyo in?", "Which country is Kyoto in?"]}"""

READ_SYSTEM = """\
Answer the question from the passage only. If the passage states the answer, copy the words \
that state it as the quote (at most 20 words) and give the answer in a few words taken from \
the quote. If the passage does not state it, give an empty list of claims. Never guess and \
never use outside knowledge."""

ANSWER_SYSTEM = """\
Answer the question from the evidence only, in a few words (yes or no for a yes/no \
question), and cite the ids of the evidence you used."""


def plan_messages(question: str) -> list[Message]:
    return [
        {"role": "system", "content": PLAN_SYSTEM},
        {"role": "user", "content": f"Question: {question}"},
    ]


def read_messages(
    question: str, sub_question: str, hit: Hit, *, passage_chars: int
) -> list[Message]:
    """The passage is cut at `passage_chars`: the prompt is most of a call's cost on CPU."""
    passage = " ".join(hit.text.split())[:passage_chars]
    context = "" if sub_question == question else f"(This helps to answer: {question})\n"
    return [
        {"role": "system", "content": READ_SYSTEM},
        {"role": "user", "content": f"Question: {sub_question}\n{context}\nPassage: {passage}"},
    ]


def answer_messages(question: str, evidence: Sequence[LedgerEntry]) -> list[Message]:
    lines = "\n".join(f'[{e.id}] {e.claim}. Quote: "{e.quote}"' for e in evidence)
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": f"Question: {question}\n\nEvidence:\n{lines}"},
    ]
