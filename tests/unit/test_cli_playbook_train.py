"""`playbook train` and `playbook eval` with a scripted model and hashing embedder swapped in
where the commands build their clients: the playbook lands in the store after every update
(so Ctrl-C loses nothing), eval never changes it, mistakes are usage errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel
from rich.console import Console
from typer.testing import CliRunner

from evergraph import runtime
from evergraph.agents.ace_types import AceSettings
from evergraph.cli_playbook_train import register_playbook_train_commands
from evergraph.cli_playbook_train_ops import run_train
from evergraph.config import load_settings
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM
from tests.unit.test_ace_adapt import ITEMS, RULES, Model
from tests.unit.test_cli_ask import Served

console = Console(width=200)
app = typer.Typer()
register_playbook_train_commands(app, lambda ctx: load_settings(), console)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [k for k in os.environ if k.startswith("EVERGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EVERGRAPH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "build_embedder", lambda settings: HashingEmbedder())
    rows = [{"id": i.id, "question": i.task, "answer": i.gold} for i in ITEMS]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    yield tmp_path


def serve(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> None:
    monkeypatch.setattr(runtime, "build_llm", lambda settings: Served(llm))


def stored(home: Path) -> list[str]:
    with SQLiteGraphStore(home / "evergraph.db") as store:
        playbook = store.get_playbook("math")
    return [b.content for b in playbook.bullets] if playbook else []


def test_train_online_then_eval_with_and_without_the_playbook(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(monkeypatch, Model().llm)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "tasks.jsonl", "--name", "math", "--mode", "online"])
    assert trained.exit_code == 0, trained.output
    assert stored(home) == RULES[:2]

    model = Model()
    serve(monkeypatch, model.llm)
    evaluated = runner.invoke(app, ["eval", "tasks.jsonl", "--name", "math", "--out", "res"])
    assert evaluated.exit_code == 0, evaluated.output
    assert len(model.llm.requests) == 2 and stored(home) == RULES[:2]  # eval changes nothing
    lines = (home / "res/tasks.math.eval.predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["correct"] for x in lines] == [True, True]
    scores = json.loads((home / "res/tasks.math.eval.scores.json").read_text())
    assert scores["task"] == "formula" and scores["passes"][0]["accuracy"] == 1.0

    serve(monkeypatch, Model().llm)
    baseline = runner.invoke(
        app, ["eval", "tasks.jsonl", "--name", "math", "--no-playbook", "--out", "res"]
    )
    assert baseline.exit_code == 0, baseline.output
    scores = json.loads((home / "res/tasks.math.empty.scores.json").read_text())
    assert scores["passes"][0]["accuracy"] == 0.0


def test_eval_of_an_unknown_playbook_is_a_usage_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(monkeypatch, ScriptedLLM([]))
    result = CliRunner().invoke(app, ["eval", "tasks.jsonl", "--name", "nope"])
    assert isinstance(result.exception, UsageError)
    assert "no playbook 'nope'" in str(result.exception)


def test_validation_is_for_offline_mode(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, ScriptedLLM([]))
    args = ["train", "tasks.jsonl", "--name", "m", "--mode", "online", "--val", "tasks.jsonl"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UsageError)


def test_an_interruption_keeps_every_update_already_made(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model()

    def interrupt_the_second_task(
        messages: list[Message], schema: type[BaseModel], n: int
    ) -> list[str]:
        if "Task 2" in messages[-1]["content"]:
            raise KeyboardInterrupt
        return model.answer(messages, schema, n)

    serve(monkeypatch, ScriptedLLM([interrupt_the_second_task] * 10))
    with pytest.raises(KeyboardInterrupt):
        run_train(
            load_settings(),
            home / "tasks.jsonl",
            name="math",
            offline=False,
            val=None,
            epochs=1,
            kind=None,
            ground_truth=True,
            limit=None,
            ace=AceSettings(),
            out_dir=None,
            out=console,
        )
    assert stored(home) == RULES[:1]  # the first task's update was saved


def test_help_teaches_both_commands() -> None:
    runner = CliRunner()
    train = " ".join(runner.invoke(app, ["train", "--help"]).output.split())
    assert all(o in train for o in ("--mode", "--val", "--epochs", "--no-ground-truth", "Ctrl-C"))
    evaluate = " ".join(runner.invoke(app, ["eval", "--help"]).output.split())
    assert all(o in evaluate for o in ("--no-playbook", "--out", "Examples"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "tasks.jsonl", "--name", " "], "--name"),
        (["train", "binary.jsonl", "--name", "math"], "not UTF-8 text"),
        (["train", ".", "--name", "math"], "is a folder"),
    ],
)
def test_task_and_name_mistakes_are_usage_errors(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    serve(monkeypatch, ScriptedLLM([]))
    (home / "binary.jsonl").write_bytes(b'{"question": "\xff\xfe"}\n')
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UsageError), result.exception
    assert needle in str(result.exception)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_an_out_that_is_a_file_fails_before_any_work(
    home: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    serve(monkeypatch, ScriptedLLM([]))  # no answer scripted: any request would fail otherwise
    (home / "taken").write_text("x")
    args = [command, "tasks.jsonl", "--name", "math", "--out", "taken"]
    result = CliRunner().invoke(app, [*args, *(["--no-playbook"] if command == "eval" else [])])
    assert isinstance(result.exception, FileExistsError), result.exception
