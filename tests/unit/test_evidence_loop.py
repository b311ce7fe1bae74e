"""The EvidenceLoop's control flow with a scripted model over a real SQLite store: it answers
with citations into the ledger, loops when a hop lacks evidence, stops at its budgets and
refuses naming the hop that lacks evidence."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel

from evergraph.agents.evidence_loop import Answer, HopStatus, LoopSettings, Refusal, ask
from evergraph.agents.evidence_prompts import AnswerOut, PlanOut, ReadOut
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.retrieval.index import Passage, index_passages

EMBEDDER = HashingEmbedder(dim=256)
QUESTION = "Where did the director of Inception study?"
PASSAGES = [
    Passage("Inception", "Inception is a 2010 science fiction film directed by Christopher Nolan."),
    Passage("Interstellar", "Interstellar is a 2014 film directed by Christopher Nolan."),
    Passage("Christopher Nolan", "Nolan studied English literature at University College London."),
    Passage("Tenet", "Tenet is a 2020 film; its director studied in London."),
]
BODIES = {p.chunk_id: p.body for p in PASSAGES}
TWO_HOPS = {"hops": ["Who directed Inception?", "Where did #1 study?"]}
DIRECTOR = ("directed by Christopher Nolan", "Christopher Nolan")
SCHOOL = ("studied English literature at University College London", "University College London")

Reader = Callable[[str, list[str]], list[dict[str, object]]]
"""(sub-question, the passage of the prompt as a list of one) -> claims"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "store.db") as s:
        index_passages(s, EMBEDDER, PASSAGES)
        yield s


def finds(facts: dict[str, tuple[str, str]]) -> Reader:
    """A reader that claims `answer` from the first passage holding `quote`, for the first
    sub-question containing a key of `facts`."""

    def read(question: str, passages: list[str]) -> list[dict[str, object]]:
        for key, (quote, answer) in facts.items():
            if key in question:
                for text in passages:
                    if quote in text:
                        return [{"quote": quote, "answer": answer}]
        return []

    return read


def model(
    plan: Mapping[str, object] | str, reader: Reader, answer: Mapping[str, object]
) -> ScriptedLLM:
    """A scripted model that answers each request by its schema."""

    def respond(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        prompt = messages[-1]["content"]
        if schema is PlanOut:
            return [plan if isinstance(plan, str) else json.dumps(plan)]
        if schema is ReadOut:
            question = prompt.split("\n", 1)[0].removeprefix("Question: ")
            passages = re.findall(r"^Passage: (.*)$", prompt, flags=re.MULTILINE)
            return [json.dumps({"claims": reader(question, passages)})]
        assert schema is AnswerOut
        return [json.dumps(answer)]

    return ScriptedLLM([respond] * 40, max_retries=0)


def run(store: SQLiteGraphStore, llm: ScriptedLLM, **settings: object) -> Answer | Refusal:
    loop_settings = LoopSettings.model_validate({"read_k": 2, **settings})
    return asyncio.run(
        ask(QUESTION, store=store, embedder=EMBEDDER, llm=llm, settings=loop_settings)
    )


def schemas(llm: ScriptedLLM) -> list[str]:
    return [r.schema.__name__ for r in llm.requests]


def test_answers_with_citations_to_ledger_entries_quoting_their_chunks(
    store: SQLiteGraphStore,
) -> None:
    reader = finds({"directed": DIRECTOR, "Christopher Nolan study": SCHOOL})
    llm = model(TWO_HOPS, reader, {"answer": "University College London", "citations": ["E2"]})
    result = run(store, llm)

    assert isinstance(result, Answer), result
    assert result.text == "University College London" and result.citations == ["E2"]
    cited = result.ledger.get("E2")
    assert cited is not None and cited.hop == 2 and cited.quote in BODIES[cited.chunk_id]
    assert all(e.quote in BODIES[e.chunk_id] for e in result.ledger.entries)
    assert [h.status for h in result.hops] == [HopStatus.SUPPORTED] * 2
    assert result.hops[1].query == "Where did Christopher Nolan study?"  # #1 filled in
    assert schemas(llm) == ["PlanOut", *["ReadOut"] * 4, "AnswerOut"]  # 2 passages a hop
    assert [e.node for e in result.trace] == [
        "plan",
        *["retrieve", "read", "verify"] * 2,
        "answer",
    ]
    assert all(r.max_tokens is not None and r.max_tokens <= 200 for r in llm.requests)
    assert result.usage.requests == 6


def test_loops_with_a_refined_query_and_unread_chunks_until_a_hop_is_supported(
    store: SQLiteGraphStore,
) -> None:
    seen: list[list[str]] = []

    def reader(question: str, passages: list[str]) -> list[dict[str, object]]:
        """Finds nothing in round 1; in round 2 claims the last word of what it reads."""
        seen.append(passages)
        last = passages[0].split()[-1].strip(".")
        return [{"quote": passages[0], "answer": last}] if len(seen) > 1 else []

    one_hop = {"hops": ["Where did Christopher Nolan study?"]}
    llm = model(one_hop, reader, {"answer": "x", "citations": []})
    result = run(store, llm, read_k=1)

    assert isinstance(result, Answer), result
    assert len(seen) == 2 and seen[0] != seen[1]  # the second round read a new chunk
    queries = [e.data["query"] for e in result.trace if e.node == "retrieve"]
    assert queries[0] == "Where did Christopher Nolan study?"
    assert QUESTION in queries[1]  # refined with the whole question
    assert result.ledger.entries[0].round == 2


def test_stops_at_the_round_budget_and_refuses_naming_the_hop(store: SQLiteGraphStore) -> None:
    llm = model(TWO_HOPS, finds({"directed": DIRECTOR}), {"answer": "x", "citations": []})
    result = run(store, llm, max_rounds=3)

    assert isinstance(result, Refusal), result
    assert [h.index for h in result.missing_hops] == [2]
    assert result.missing_hops[0].question == "Where did #1 study?"
    assert (
        "hop 2" in result.reason and "no evidence" in result.reason and "3 rounds" in result.reason
    )
    assert "AnswerOut" not in schemas(llm) and schemas(llm).count("ReadOut") == 3 * 2
    assert [e.hop for e in result.ledger.entries] == [1]  # hop 1's evidence is kept


def test_stops_at_the_token_budget(store: SQLiteGraphStore) -> None:
    llm = model(TWO_HOPS, finds({}), {"answer": "x", "citations": []})
    result = run(store, llm, max_tokens=1)

    assert isinstance(result, Refusal)
    assert "tokens spent" in result.reason and [h.index for h in result.missing_hops] == [1, 2]
    assert schemas(llm) == ["PlanOut", "ReadOut", "ReadOut"]  # hop 2 waits for hop 1's answer


def test_refuses_when_every_chunk_was_read(store: SQLiteGraphStore) -> None:
    llm = model({"hops": [QUESTION]}, finds({}), {"answer": "x", "citations": []})
    result = run(store, llm, max_rounds=10)

    assert isinstance(result, Refusal) and "no unread chunk" in result.reason
    assert schemas(llm).count("ReadOut") == 4  # 4 chunks, 2 a round, each read on its own


def test_claims_that_fail_the_checks_never_enter_the_ledger(store: SQLiteGraphStore) -> None:
    def reader(question: str, passages: list[str]) -> list[dict[str, object]]:
        return [
            {"quote": "Nolan was born in Paris in 1970.", "answer": "Paris"},
            {"quote": passages[0][:30], "answer": "x"},
        ]

    llm = model({"hops": [QUESTION]}, reader, {"answer": "x", "citations": []})
    result = run(store, llm, max_rounds=1, read_k=1)

    assert isinstance(result, Refusal) and result.ledger.entries == []
    rejected = next(e for e in result.trace if e.node == "read").data["rejected"]
    assert ": quote not in the passage: 'Nolan was born" in rejected[0]
    assert rejected[1].endswith("answer 'x' not in its quote")


@pytest.mark.parametrize("said", ["Oxford", "Yes"])  # not in the evidence; not a place
def test_an_answer_outside_the_evidence_falls_back_to_the_last_hop(
    store: SQLiteGraphStore, said: str
) -> None:
    reader = finds({"directed": DIRECTOR, "study": SCHOOL})
    llm = model(TWO_HOPS, reader, {"answer": said, "citations": ["E9"]})
    result = run(store, llm)

    assert isinstance(result, Answer)
    assert result.text == "University College London" and result.citations == ["E1", "E2"]


def test_an_invalid_plan_makes_the_question_one_hop(store: SQLiteGraphStore) -> None:
    llm = model(
        "not json", finds({"director of Inception": DIRECTOR}), {"answer": "", "citations": []}
    )
    result = run(store, llm)

    assert isinstance(result, Answer) and [h.question for h in result.hops] == [QUESTION]
    assert result.trace[0].message == "no valid plan: one hop"


def test_contradicting_evidence_keeps_a_hop_open_until_refusal(store: SQLiteGraphStore) -> None:
    def reader(question: str, passages: list[str]) -> list[dict[str, object]]:
        claims = []
        for text in passages:
            year = re.search(r"\b(20\d\d)\b", text)
            if year:
                claims.append({"quote": year.group(1), "answer": year.group(1)})
        return claims[:1] if len(claims) == 1 else claims[:2]

    llm = model(
        {"hops": ["When was a Nolan film released?"]}, reader, {"answer": "x", "citations": []}
    )
    result = run(store, llm, max_rounds=1, read_k=3)  # 3 of 4 passages: two state a year

    assert isinstance(result, Refusal), result
    assert "contradictory evidence" in result.reason
    assert result.missing_hops[0].status is HopStatus.CONTESTED
    assert {e.verdict.value for e in result.ledger.entries} == {"contradicted"}


def test_an_answer_echoing_the_earlier_hop_it_was_asked_about_is_rejected(
    store: SQLiteGraphStore,
) -> None:
    reader = finds({"directed": DIRECTOR, "Christopher Nolan study": DIRECTOR})
    llm = model(TWO_HOPS, reader, {"answer": "x", "citations": []})
    result = run(store, llm, max_rounds=2)

    assert isinstance(result, Refusal) and [h.index for h in result.missing_hops] == [2]
    read = [e for e in result.trace if e.node == "read" and e.data["hop"] == 2]
    assert "repeats an earlier hop's answer" in read[0].data["rejected"][0]
