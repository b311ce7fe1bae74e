"""The CLI as a user meets it: a real process, one clear message per mistake, no traceback
(in this process where a client must be swapped for a fake)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from evergraph import cli, runtime


def main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `evergraph ARGS` in this process (so the scripted model can be swapped in)."""
    monkeypatch.setattr(sys, "argv", ["evergraph", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    return int(done.value.code or 0)


from tests.unit.server_fixtures import free_port, services


def run(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVERGRAPH_")}
    base |= {"EVERGRAPH_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "evergraph", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=home,
        timeout=120,
    )


def test_help_teaches_every_command(tmp_path: Path) -> None:
    r = run("--help", home=tmp_path)
    assert r.returncode == 0
    for command in ("doctor", "stats", "smoke", "model", "config"):
        assert command in r.stdout
    model = run("model", "--help", home=tmp_path)
    assert all(c in model.stdout for c in ("serve", "stop", "status", "pull"))


def commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command lines a user can run: every command, and every group that runs on its own."""
    if not isinstance(command, TyperGroup):
        return [path]
    runs = [path] if path and command.invoke_without_command else []
    subs = command.commands.items()
    return runs + [p for name, sub in subs for p in commands(sub, (*path, name))]


def test_every_command_help_shows_an_example() -> None:
    lines = commands(typer.main.get_command(cli.app))
    assert ("serve",) in lines and ("serve", "keys", "revoke") in lines
    for line in lines:
        shown = CliRunner().invoke(cli.app, [*line, "--help"])
        assert shown.exit_code == 0, line
        example = f"evergraph {' '.join(line)}"
        assert "Example" in shown.output and example in shown.output, line


def test_stats_on_a_fresh_store(tmp_path: Path) -> None:
    r = run("stats", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "schema_version" in r.stdout and (tmp_path / "evergraph.db").exists()


@pytest.mark.parametrize(
    ("env", "toml", "needle"),
    [
        ({"EVERGRAPH_CONCURRENCY": "zero"}, None, "concurrency"),
        ({"EVERGRAPH_LLM__BASE_URL": "localhost"}, None, "base_url"),
        ({}, "[llm\n", "cannot read"),
    ],
)
def test_bad_config_is_one_message_and_exit_2(
    tmp_path: Path, env: dict[str, str], toml: str | None, needle: str
) -> None:
    if toml is not None:
        (tmp_path / "evergraph.toml").write_text(toml)
    r = run("stats", home=tmp_path, env=env)
    assert r.returncode == 2
    assert needle in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    alien = tmp_path / "notes.txt"
    alien.write_text("not a database, just notes")
    r = run("stats", home=tmp_path, env={"EVERGRAPH_STORE": str(alien)})
    assert r.returncode == 2
    assert "not an Evergraph store" in r.stderr and "Traceback" not in r.stderr
    assert alien.read_text() == "not a database, just notes"


def test_unknown_option_and_model(tmp_path: Path) -> None:
    r = run("stats", "--bogus", home=tmp_path)
    assert r.returncode == 2 and "No such option" in r.stderr
    r = run("model", "pull", "gpt-17", home=tmp_path)
    assert r.returncode == 2 and "unknown model" in r.stderr and "Traceback" not in r.stderr


def test_missing_documents_for_smoke(tmp_path: Path) -> None:
    r = run(
        "smoke",
        str(tmp_path / "nowhere"),
        home=tmp_path,
        env={"EVERGRAPH_LLM__BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_smoke_checks_its_paths_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def slow(settings: object) -> None:
        raise AssertionError("built a client (the embedder takes seconds) before the paths")

    monkeypatch.setenv("EVERGRAPH_HOME", str(tmp_path))
    for build in ("build_embedder", "build_llm", "build_store"):
        monkeypatch.setattr(runtime, build, slow)
    assert main(monkeypatch, "smoke", str(tmp_path / "typo.md")) == 2
    assert "typo.md does not exist" in capsys.readouterr().err


def test_store_copy_between_sqlite_files(tmp_path: Path) -> None:
    from evergraph.graph.models import Source
    from evergraph.graph.store.sqlite import SQLiteGraphStore

    with SQLiteGraphStore(tmp_path / "a.db") as a:
        a.upsert_sources([Source(id=f"s{i}", text=f"text {i}") for i in range(7)])
    r = run("store", "copy", "--from", "a.db", "--to", "sqlite:b.db", "--batch", "3", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "counts match" in r.stdout
    with SQLiteGraphStore(tmp_path / "b.db") as b:
        assert b.stats().sources == 7
    again = run("store", "copy", "--from", "a.db", "--to", "b.db", home=tmp_path)
    assert again.returncode == 2 and "already holds records" in again.stderr


def test_an_error_with_brackets_is_printed_as_written(tmp_path: Path) -> None:
    r = run("stats", home=tmp_path, env={"EVERGRAPH_STORE": "foo://x"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown store location" in r.stderr and "[/DATABASE]" in r.stderr


def test_a_path_of_the_wrong_kind_is_one_message(tmp_path: Path) -> None:
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("x")
    assert run("stats", home=tmp_path).returncode == 0  # a store to copy from
    copy = ("store", "copy", "--from", "evergraph.db", "--to", "b.db")
    for args, env, named in [
        (("export", "--format", "json", "--out", str(folder)), {}, folder),
        (("export", "--format", "csv", "--out", str(file)), {}, file),
        ((*copy, "--state", str(folder)), {}, folder),
        (("eval", "multihop", str(file), "--out-dir", str(file)), {}, file),
        (("stats",), {"EVERGRAPH_HOME": str(file)}, file),
    ]:
        r = run(*args, home=tmp_path, env=env)
        assert r.returncode == 2 and str(named) in r.stderr, (args, r.stderr)
        assert "fix:" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_a_typo_in_a_settings_section_is_caught(tmp_path: Path) -> None:
    (tmp_path / "evergraph.toml").write_text('[llm]\nmodle = "qwen"\n')
    r = run("stats", home=tmp_path)
    assert r.returncode == 2 and "llm.modle" in r.stderr and "Traceback" not in r.stderr


def test_a_malformed_nested_variable_is_not_blamed_on_the_toml(tmp_path: Path) -> None:
    r = run("stats", home=tmp_path, env={"EVERGRAPH_LLM": "{"})
    assert r.returncode == 2 and "fix:" in r.stderr
    assert "EVERGRAPH_LLM" in r.stderr and "evergraph.toml" not in r.stderr


def test_store_copy_from_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    r = run("store", "copy", "--from", "typo.db", "--to", "b.db", home=tmp_path)
    assert r.returncode == 2 and "typo.db" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "b.db").exists()


def test_a_config_folder_and_a_port_out_of_range(tmp_path: Path) -> None:
    r = run("--config", str(tmp_path), "stats", home=tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    r = run("model", "stop", "--port", "0", home=tmp_path)
    assert r.returncode == 2 and "--port" in r.stderr


def test_serve_on_a_home_whose_jobs_another_server_runs(tmp_path: Path) -> None:
    """A second `evergraph serve` on one home would run the first one's queued jobs too: it
    stops at start with one message naming the lock, not uvicorn's startup traceback."""
    holder = services(tmp_path)
    holder.jobs.claim()  # this test process plays the first server
    try:
        r = run("serve", "--port", str(free_port()), home=tmp_path, env={"COLUMNS": "500"})
    finally:
        asyncio.run(holder.jobs.close(0))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert str(tmp_path / "jobs" / "runner.lock") in r.stderr
