"""The multi-hop evaluation harness on tiny files of both formats, with the hashing embedder and
a scripted model: file reading, corpus pooling, the contrast corpus without removed paragraphs,
the metrics, and the files it writes."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from evergraph.agents.evidence_prompts import AnswerOut, PlanOut
from evergraph.agents.extract import ExtractOptions
from evergraph.agents.extract_rules import ChunkOut
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.evals.multihop import run_multihop_eval
from evergraph.evals.multihop_data import answer_scores, f1_score, read_items
from evergraph.evals.multihop_graph import GraphBuild
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM, ScriptError

PARAGRAPHS = [
    ("Van Hook Township", "Van Hook Township is a township in Mountrail County.", True),
    ("Mountrail County", "Mountrail County's seat is Stanley.", True),
    ("Ward County", "Ward County's seat is Minot.", False),
]


def musique(item_id: str, paragraphs: list[tuple[int, tuple[str, str, bool]]], **extra: Any) -> str:
    row = {
        "id": item_id,
        "question": "What is the seat of the county where Van Hook Township is located?",
        "answer": "Stanley",
        "answer_aliases": ["Stanley, North Dakota"],
        "answerable": True,
        "paragraphs": [
            {"idx": i, "title": t, "paragraph_text": x, "is_supporting": s}
            for i, (t, x, s) in paragraphs
        ],
    }
    return json.dumps(row | extra)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    answerable = tmp_path / "answerable.jsonl"
    answerable.write_text(musique("q1", list(enumerate(PARAGRAPHS))) + "\n")
    contrast = tmp_path / "contrast.jsonl"
    lacking = [(0, PARAGRAPHS[0]), (2, PARAGRAPHS[2])]
    other = [(0, PARAGRAPHS[1]), (1, PARAGRAPHS[2])]  # another question brings it back
    contrast.write_text(
        musique(
            "q1__removed_1", lacking, answerable=False, derived_from="q1", removed_supporting_idx=1
        )
        + "\n"
        + musique("q9", other, answerable=False)
        + "\n"
    )
    return answerable, contrast


PLAN = {"hops": ["Which county is Van Hook Township in?", "What is the seat of #1?"]}
FACTS = {
    "county": ("in Mountrail County", "Mountrail County"),
    "seat": ("seat is Stanley", "Stanley"),
}


def model(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
    """Plans two hops, reads each from the passage that states it, answers Stanley."""
    if schema is PlanOut:
        return [json.dumps(PLAN)]
    if schema is AnswerOut:
        return [json.dumps({"answer": "Stanley", "citations": ["E2"]})]
    prompt = messages[-1]["content"]
    question = prompt.split("\n", 1)[0]
    quote, answer = FACTS["seat" if "seat" in question else "county"]
    claims = [
        {"quote": quote, "answer": answer}
        for text in re.findall(r"^Passage: (.*)$", prompt, flags=re.MULTILINE)
        if quote in text
    ]
    return [json.dumps({"claims": claims[:1]})]


def test_harness_scores_retrieval_the_loop_and_refusal(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    answerable, contrast = files
    llm = ScriptedLLM([model] * 60, max_retries=0)
    scores = run_multihop_eval(
        answerable,
        store_dir=tmp_path / "stores",
        embedder=HashingEmbedder(64),
        llm=llm,
        k_values=[1, 2],
        out_dir=tmp_path / "out",
        contrast=contrast,
    )

    assert scores["corpus_passages"] == 3
    assert scores["retrieval"]["hybrid"]["recall@2"] is not None
    assert scores["retrieval"]["hybrid+graph"]["recall@2"] is None  # text only: n/a, with why
    assert "no facts" in scores["retrieval"]["hybrid+graph"]["note"]
    loop = scores["loop"]
    assert loop["answer_em"] == 1.0 and loop["search_sufficiency"] == 1.0
    assert loop["knowledge_utilisation_em"] == 1.0 and loop["cited_gold_share"] == 1.0
    # the removed paragraph is left out of the contrast corpus although q9 holds a copy
    assert scores["contrast"]["removed_paragraphs_left_out"] == 1
    assert scores["contrast"]["removed_but_elsewhere_in_file"] == 1
    assert scores["contrast"]["corpus_passages"] == 2
    assert scores["refusal"]["refused_unanswerable"] == 1.0
    assert scores["refusal"]["pair_em"] == 1.0

    lines = (tmp_path / "out" / "answerable.predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == ["q1", "q1__removed_1"]
    assert rows[0]["loop"]["citations"] == ["E2"] and rows[0]["retrieved"]["bm25"]
    assert rows[1]["loop"]["kind"] == "refusal" and "hop 2" in rows[1]["loop"]["reason"]
    saved = json.loads((tmp_path / "out" / "answerable.scores.json").read_text())
    assert saved["loop"] == loop


def test_indexing_reports_progress_per_corpus(files: tuple[Path, Path], tmp_path: Path) -> None:
    """Indexing a real corpus takes a minute: each corpus indexed reports passages done."""
    answerable, contrast = files
    calls: list[tuple[str, int, int]] = []
    run_multihop_eval(
        answerable,
        store_dir=tmp_path / "stores",
        embedder=HashingEmbedder(64),
        llm=ScriptedLLM([model] * 60, max_retries=0),
        out_dir=tmp_path / "out",
        contrast=contrast,
        progress=lambda label, done, total: calls.append((label, done, total)),
    )
    assert calls[0] == ("indexing answerable", 0, 3) and calls[-1] == ("indexing contrast", 2, 2)
    assert ("indexing answerable", 3, 3) in calls


def test_an_interrupted_eval_resumes_without_asking_again(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    answerable, contrast = files

    def run(llm: ScriptedLLM, contrast: Path | None = contrast, out: str = "out") -> Any:
        return run_multihop_eval(
            answerable,
            store_dir=tmp_path / "stores",
            embedder=HashingEmbedder(64),
            llm=llm,
            out_dir=tmp_path / out,
            contrast=contrast,
        )

    q1 = ScriptedLLM([model] * 60, max_retries=0)
    run(q1, contrast=None, out="q1-alone")
    with pytest.raises(ScriptError):  # the model is gone after q1's calls
        run(ScriptedLLM([model] * len(q1.requests), max_retries=0))
    journal = tmp_path / "out" / "answerable.loop-journal.jsonl"
    assert len(journal.read_text().splitlines()) == 1

    llm = ScriptedLLM([model] * 60, max_retries=0)
    scores = run(llm)

    assert scores["loop"]["answer_em"] == 1.0 and scores["refusal"]["pair_em"] == 1.0
    assert [r.schema for r in llm.requests].count(PlanOut) == 1  # the contrast twin's alone
    assert not journal.exists()


def extract(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
    """Reads each paragraph's one sentence as a triple: "<subject> ... in|is <object>."."""
    prompt = messages[-1]["content"]
    (title, text, _), *_ = [p for p in PARAGRAPHS if p[1] in prompt]
    subject, obj = title, text.rstrip(".").split()[-2 if "County." in text else -1]
    obj = {"Mountrail": "Mountrail County", "Ward": "Ward County"}.get(obj, obj)
    out = ChunkOut.model_validate(
        {
            "entities": [{"name": subject, "type": "Place"}, {"name": obj, "type": "Place"}],
            "relations": [
                {"subject": subject, "predicate": "linked_to", "object": obj, "quote": text}
            ],
        }
    )
    return [out.model_dump_json()] * n


def test_a_graph_built_over_the_corpus_lands_on_the_indexed_passages(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    answerable, _ = files
    llm = ScriptedLLM([extract] * 3, max_retries=0)
    build = GraphBuild(llm, ExtractOptions(samples=1), concurrency=2)
    run = partial(
        run_multihop_eval,
        answerable,
        store_dir=tmp_path / "stores",
        embedder=HashingEmbedder(64),
        llm=None,
        k_values=[1, 2],
        out_dir=tmp_path / "out",
    )
    scores = run(graph=build)

    assert scores["graph"] | {"model": "scripted", "samples": 1} == scores["graph"]
    assert scores["graph"]["facts"] == 3 and scores["graph"]["evidence"] == 3
    assert scores["retrieval"]["hybrid+graph"]["recall@2"] is not None
    passages = read_items(answerable)[0].passages
    with SQLiteGraphStore(scores["store"]) as store:
        stats = store.stats()
        evidence = [e for p in passages for e in store.evidence_from(p.source_id)]
    # the builder's sources and chunks are the passages' own: indexing added none
    assert (stats.sources, stats.chunks) == (3, 3)
    assert {e.chunk_id for e in evidence} == {p.chunk_id for p in passages}
    assert llm.remaining == 0
    again = run(graph=GraphBuild(ScriptedLLM([]), ExtractOptions(samples=1), concurrency=2))
    assert again["graph"]["facts"] == 3  # kept and reused: no model call the second time
    assert run()["store"] != scores["store"]  # the text-only corpus is a store of its own


def test_hotpotqa_format_and_the_official_answer_metrics(tmp_path: Path) -> None:
    path = tmp_path / "hotpot.jsonl"
    row = {
        "_id": "h1",
        "question": "Q?",
        "answer": "yes",
        "context": [["A", ["First.", " Second."]], ["B", ["Other."]]],
        "supporting_facts": [["A", 1]],
    }
    path.write_text(json.dumps(row) + "\n\n")
    (item,) = read_items(path)
    assert item.passages[0].text == "First. Second." and item.answerable
    assert item.gold == {item.passages[0].chunk_id}
    assert answer_scores("Yes.", item.answers) == (1.0, 1.0)
    assert answer_scores("no", item.answers) == (0.0, 0.0)
    assert answer_scores(None, item.answers) == (0.0, 0.0)
    assert f1_score("the Stanley city", "Stanley") == pytest.approx(2 / 3)


def test_a_file_of_another_format_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "no paragraphs"}\n')
    with pytest.raises(UsageError, match=r"bad\.jsonl:1"):
        read_items(path)
