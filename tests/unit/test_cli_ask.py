"""`evergraph ask` and `evergraph eval multihop` as a user meets them: help that teaches, an
answer with its citations or a refusal saying which hop lacks evidence (exit 0 both), one
message per mistake. The model is scripted and the embedder hashes words; both are swapped in
where the CLI builds its clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evergraph import runtime
from evergraph.cli_ask import EvalMode
from evergraph.embed.testing import HashingEmbedder
from evergraph.evals.multihop import MODES
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.testing import ScriptedLLM
from evergraph.retrieval.index import index_passages
from tests.unit.test_cli import main, run
from tests.unit.test_cli_graph import flat
from tests.unit.test_eval_multihop import files  # noqa: F401  (a fixture)
from tests.unit.test_eval_multihop import model as eval_model
from tests.unit.test_evidence_loop import (
    DIRECTOR,
    EMBEDDER,
    PASSAGES,
    QUESTION,
    SCHOOL,
    TWO_HOPS,
    finds,
    model,
)


class Served:
    """The scripted model as `runtime.build_llm` hands it out: an async context manager."""

    def __init__(self, llm: ScriptedLLM) -> None:
        self.llm = llm

    async def __aenter__(self) -> ScriptedLLM:
        return self.llm

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home whose store holds the Inception passages, embedded by the hashing embedder."""
    for name in [k for k in __import__("os").environ if k.startswith("EVERGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EVERGRAPH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "build_embedder", lambda settings: EMBEDDER)
    with SQLiteGraphStore(tmp_path / "evergraph.db") as store:
        index_passages(store, EMBEDDER, PASSAGES)
    yield tmp_path


def serve(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]) -> ScriptedLLM:
    """Script the model to find the director and, if asked, where he studied."""
    llm = model(TWO_HOPS, finds({"directed": DIRECTOR, "Christopher Nolan study": SCHOOL}), answer)
    monkeypatch.setattr(runtime, "build_llm", lambda settings: Served(llm))
    return llm


def test_help_teaches_ask_and_eval(tmp_path: Path) -> None:
    top = run("--help", home=tmp_path)
    assert "ask" in top.stdout and "eval" in top.stdout
    ask = flat(run("ask", "--help", home=tmp_path).stdout)
    for words in ("--trace", "--json", "--as-of", "--max-rounds", "Examples", "refuses"):
        assert words in ask
    multihop = flat(run("eval", "multihop", "--help", home=tmp_path).stdout)
    for words in ("--contrast", "--limit", "--llm", "--k", "recall@k", "predictions", "Examples"):
        assert words in multihop


def test_eval_modes_are_the_harness_modes() -> None:
    assert [m.value for m in EvalMode] == list(MODES)


def test_ask_prints_the_answer_with_numbered_citations(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, {"answer": "University College London", "citations": ["E2"]})
    assert main(monkeypatch, "ask", QUESTION) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == "University College London"
    assert lines[1].startswith("  [1] Christopher Nolan (")  # the cited source's title
    assert SCHOOL[0] in lines[2]  # and the quote
    assert "round" not in printed  # no trace unless asked


def test_a_refusal_names_the_hop_lacking_evidence_and_exits_0(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = model(TWO_HOPS, finds({"directed": DIRECTOR}), {"answer": "x", "citations": []})
    monkeypatch.setattr(runtime, "build_llm", lambda settings: Served(llm))
    assert main(monkeypatch, "ask", QUESTION, "--max-rounds", "2") == 0
    printed = flat(capsys.readouterr().out)
    assert "refused" in printed and "2 rounds" in printed
    assert "hop 2 lacks evidence: Where did Christopher Nolan study?" in printed
    assert "hop 1 found: Christopher Nolan" in printed


def test_trace_and_json(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, {"answer": "University College London", "citations": ["E2"]})
    assert main(monkeypatch, "ask", QUESTION, "--trace") == 0
    nodes = [line.split()[2] for line in capsys.readouterr().out.splitlines() if "round" in line]
    assert nodes[:4] == ["plan", "retrieve", "read", "verify"] and nodes[-1] == "answer"

    serve(monkeypatch, {"answer": "University College London", "citations": ["E2"]})
    assert main(monkeypatch, "ask", "--json", QUESTION) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "answer" and result["citations"] == ["E2"]
    assert [e["id"] for e in result["ledger"]["entries"]] == ["E1", "E2"]


def test_ask_with_an_as_of_before_every_document_refuses(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, {"answer": "x", "citations": []})
    assert main(monkeypatch, "ask", "--as-of", "1999", QUESTION) == 0
    assert "no unread chunk left" in flat(capsys.readouterr().out)  # nothing published by then


def test_ask_mistakes_are_one_message(tmp_path: Path) -> None:
    r = run("ask", "  ", home=tmp_path)
    assert r.returncode == 2 and "question is empty" in r.stderr and "Traceback" not in r.stderr
    r = run("ask", "Who?", home=tmp_path)  # a fresh store
    assert r.returncode == 2 and "no documents" in r.stderr and "evergraph ingest" in r.stderr
    r = run("ask", "Who?", "--as-of", "soon", home=tmp_path)
    assert r.returncode == 2 and "is not a date" in r.stderr
    r = run("eval", "multihop", str(tmp_path / "missing.jsonl"), home=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = run("eval", "multihop", str(tmp_path), "--mode", "bm42", home=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_eval_multihop_a_file_of_another_format(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = home / "bad.jsonl"
    bad.write_text('{"question": "no paragraphs"}\n')
    assert main(monkeypatch, "eval", "multihop", str(bad)) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1 is not a HotpotQA or MuSiQue record" in err and "fix" in err


def test_eval_multihop_with_the_loop_and_contrast_twins(
    home: Path,
    files: tuple[Path, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(runtime, "build_embedder", lambda settings: HashingEmbedder(64))
    monkeypatch.setattr(
        runtime, "build_llm", lambda settings: ScriptedLLM([eval_model] * 60, max_retries=0)
    )
    answerable, contrast = files
    out_dir = home / "results"
    args = ["eval", "multihop", str(answerable), "--contrast", str(contrast), "--llm"]
    code = main(monkeypatch, *args, "--k", "1", "--k", "2", "--out-dir", str(out_dir))
    assert code == 0
    printed = flat(capsys.readouterr().out)
    assert "recall@1" in printed and "recall@2" in printed and "n/a" in printed
    # the indexing bar, in its final state (no TTY: rich draws it once, at the end)
    assert "indexing answerable" in printed and "3/3" in printed
    assert "answer_em 1.000" in printed and "refused_unanswerable 1.000" in printed
    scores = json.loads((out_dir / "answerable.scores.json").read_text())
    assert list(scores["retrieval"]) == list(MODES)
    assert (home / "eval").is_dir()  # the corpus store went to HOME/eval by default
    rows = (out_dir / "answerable.predictions.jsonl").read_text().splitlines()
    assert len(rows) == 2

    code = main(monkeypatch, "eval", "multihop", str(answerable), "--mode", "bm25", "--k", "1")
    assert code == 0
    scores = json.loads((home / "eval-results" / "answerable.scores.json").read_text())
    assert list(scores["retrieval"]) == ["bm25"] and "loop" not in scores


@pytest.mark.parametrize(
    ("content", "needle"), [(b"\n", "holds no question"), (b'{"q": "\xff"}\n', "cannot read")]
)
def test_eval_multihop_an_empty_or_binary_file(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    needle: str,
) -> None:
    bad = home / "bad.jsonl"
    bad.write_bytes(content)
    assert main(monkeypatch, "eval", "multihop", str(bad)) == 2
    assert needle in capsys.readouterr().err
    assert not (home / "eval-results" / "bad.scores.json").exists()
