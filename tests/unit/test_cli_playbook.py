"""`evergraph playbook ...` as a user meets it, on a temporary SQLite store: help that
teaches, every command's output, and one message (exit 2) per mistake."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from evergraph import runtime
from evergraph.cli import app, main
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.playbooks.deltas import AddOp, RemoveOp, TagOp, UpdateOp
from evergraph.playbooks.history import diff
from evergraph.playbooks.transfer import PlaybookExport
from tests.conformance.store_suite import T2, playbook_batch, saved_playbook


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("EVERGRAPH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EVERGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "400")  # rich reads it on each print: tables keep rows whole
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[SQLiteGraphStore]:
    """finance at version 7: str-00001 (helpful 3), str-00003 (updated, harmful 1);
    mis-00002 was added at 2 and removed at 6."""
    with SQLiteGraphStore(home / "evergraph.db") as s:
        first = saved_playbook(s)
        later = playbook_batch(
            first.playbook,
            UpdateOp(id="str-00003", content="Quote the XBRL tag exactly.", reason="clearer"),
            RemoveOp(id="mis-00002", reason="wrong"),
            TagOp(id="str-00003", tag="harmful"),
            at=T2,
        )
        s.save_playbook(later, expected_version=4)
        yield s


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str, input: str | None = None) -> str:
    result = cli(*args, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.replace("│", " ").split())  # without table borders


def fails(*args: str) -> Exception:
    result = cli(*args)
    assert result.exit_code != 0 and result.exception is not None
    return result.exception


def test_help_lists_and_teaches_every_command(home: Path) -> None:
    text = ok("playbook", "--help")
    for command in ("list", "show", "history", "diff", "revert", "export", "import", "Examples"):
        assert command in text
    show = ok("playbook", "show", "--help")
    assert all(o in show for o in ("--budget", "--task", "--json", "playbook show finance"))
    assert "--replace" in ok("playbook", "import", "--help")


def test_list(store: SQLiteGraphStore) -> None:
    saved_playbook(store, "agent-2")
    text = ok("playbook", "list")
    assert "agent-2 4 3 strategies, mistakes" in text
    assert "finance 7 2 strategies, mistakes" in text


def test_list_of_an_empty_store(home: Path) -> None:
    assert "no playbook in" in ok("playbook", "list")


def test_show_renders_the_playbook_with_counters(store: SQLiteGraphStore) -> None:
    text = ok("playbook", "show", "finance")
    assert "## strategies" in text
    assert "[str-00001] helpful=3 harmful=0 :: Read the whole question." in text
    assert "[str-00003] helpful=0 harmful=1 :: Quote the XBRL tag exactly." in text
    assert "mis-00002" not in text and "2 bullets" in text and "left out" not in text


def test_show_json_with_a_budget(store: SQLiteGraphStore) -> None:
    data = json.loads(cli("playbook", "show", "finance", "--budget", "20", "--json").output)
    assert data["version"] == 7
    rendered = data["rendered"]
    assert rendered["tokens"] <= 20 and rendered["omitted"] == 1
    # the more useful bullet wins: helpful 3 beats harmful 1
    assert rendered["bullet_ids"] == ["str-00001"]
    assert [b["id"] for b in data["bullets"]] == ["str-00001"]
    assert data["bullets"][0]["helpful"] == 3 and data["bullets"][0]["embedded"] is False


def test_show_with_a_task_ranks_by_similarity(
    store: SQLiteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "build_embedder", lambda settings: HashingEmbedder())
    task = "Which XBRL tag names the entity? Quote it exactly."
    out = cli("playbook", "show", "finance", "--budget", "20", "--task", task, "--json").output
    assert json.loads(out)["rendered"]["bullet_ids"] == ["str-00003"]


def test_history_since_and_limit(store: SQLiteGraphStore) -> None:
    text = ok("playbook", "history", "finance")
    assert "ADD str-00001 [strategies] Read the whole question." in text
    assert "TAG str-00001 helpful x3" in text and "REMOVE mis-00002 curator wrong" in text
    later = ok("playbook", "history", "finance", "--since", "5")
    assert "ADD" not in later and "UPDATE str-00003" not in later and "REMOVE" in later
    last = ok("playbook", "history", "finance", "--limit", "1")
    assert "TAG str-00003 harmful" in last and "REMOVE" not in last
    assert "6 older entries not shown" in last


def test_diff_between_versions(store: SQLiteGraphStore) -> None:
    text = ok("playbook", "diff", "finance", "--from", "2", "--to", "4")
    assert "+ str-00003 [strategies] Quote the exact XBRL tag." in text
    assert "~ str-00001 helpful: 0 -> 3" in text and "1 added, 0 removed, 1 changed" in text
    now = ok("playbook", "diff", "finance", "--from", "4")
    assert "- mis-00002 [mistakes]" in now
    assert "- Quote the exact XBRL tag. + Quote the XBRL tag exactly." in now
    assert "no difference" in ok("playbook", "diff", "finance", "--from", "7")
    with pytest.raises(UsageError, match="--to 9: playbook 'finance' has versions 0 to 7"):
        raise fails("playbook", "diff", "finance", "--from", "1", "--to", "9")


def test_revert_asks_then_appends_undo_entries(store: SQLiteGraphStore, home: Path) -> None:
    before = store.get_playbook("finance")
    refused = cli("playbook", "revert", "finance", "--to", "4", input="n\n")
    assert refused.exit_code == 1 and "nothing changed" in refused.output
    assert store.get_playbook("finance") == before
    text = ok("playbook", "revert", "finance", "--to", "4", input="y\n")
    assert "+ mis-00002" in text and "now at version 10" in text
    reverted = store.get_playbook("finance")
    assert reverted is not None and reverted.version == 10
    with SQLiteGraphStore(home / "scratch.db") as scratch:
        assert diff(saved_playbook(scratch).playbook, reverted).empty
    entries = store.playbook_history("finance", since=7)
    assert [(e.origin, e.reverts) for e in entries] == [("revert", 7), ("revert", 6), ("revert", 5)]
    assert "nothing to do" in ok("playbook", "revert", "finance", "--to", "10", "--yes")


def test_export_then_import_under_a_new_name(store: SQLiteGraphStore, home: Path) -> None:
    path = home / "finance.json"
    assert "wrote" in ok("playbook", "export", "finance", "--out", str(path))
    export = PlaybookExport.model_validate_json(path.read_text())
    assert export.format_version == 1 and len(export.history) == 7
    printed = cli("playbook", "export", "finance").output
    assert PlaybookExport.model_validate_json(printed).playbook == export.playbook
    assert "imported copy: 2 bullets, version 7 (7 history entries written)" in ok(
        "playbook", "import", str(path), "--name", "copy"
    )
    assert store.playbook_history("copy") == store.playbook_history("finance")
    copy = store.get_playbook("copy")
    assert copy is not None and copy.bullets == export.playbook.bullets


def test_import_refuses_to_overwrite_without_replace(store: SQLiteGraphStore, home: Path) -> None:
    path = home / "finance.json"
    ok("playbook", "export", "finance", "--out", str(path))
    with pytest.raises(UsageError, match="already exists") as e:
        raise fails("playbook", "import", str(path))
    assert e.value.fix is not None and "--replace" in e.value.fix


def test_import_replace_is_recorded_and_can_be_reverted(
    store: SQLiteGraphStore, home: Path
) -> None:
    path = home / "finance.json"
    ok("playbook", "export", "finance", "--out", str(path))
    current = store.get_playbook("finance")
    assert current is not None
    diverged = playbook_batch(current, AddOp(section="mistakes", content="Check the units."))
    store.save_playbook(diverged, expected_version=7)
    # the stored history (8 entries) does not continue in the file (7): recorded as entries
    ok("playbook", "import", str(path), "--replace")
    replaced = store.get_playbook("finance")
    assert replaced is not None and replaced.version == 9
    assert diff(current, replaced).empty
    (entry,) = store.playbook_history("finance", since=8)
    assert (entry.origin, entry.op.op) == ("import", "REMOVE")
    ok("playbook", "revert", "finance", "--to", "8", "--yes")
    back = store.get_playbook("finance")
    assert back is not None and diff(diverged.playbook, back).empty


def test_import_replace_appends_a_continuing_history(
    store: SQLiteGraphStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = home / "old.json", home / "new.json"
    ok("playbook", "export", "finance", "--out", str(old))
    current = store.get_playbook("finance")
    assert current is not None
    ahead = playbook_batch(current, AddOp(section="mistakes", content="Check the units."))
    store.save_playbook(ahead, expected_version=7)
    ok("playbook", "export", "finance", "--out", str(new))
    monkeypatch.setenv("EVERGRAPH_STORE", str(home / "elsewhere.db"))
    ok("playbook", "import", str(old))
    text = ok("playbook", "import", str(new), "--replace")
    assert "version 8 (1 history entries written)" in text
    with SQLiteGraphStore(home / "elsewhere.db") as elsewhere:
        assert elsewhere.playbook_history("finance") == store.playbook_history("finance")
        assert elsewhere.get_playbook("finance") == store.get_playbook("finance")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a playbook export"),
        ('{"format": "evergraph-playbook", "format_version": 2}', "format_version"),
        ('{"format": "something-else"}', "format"),
    ],
)
def test_import_of_a_bad_file_is_a_usage_error(home: Path, content: str, message: str) -> None:
    path = home / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        raise fails("playbook", "import", str(path))


def test_import_of_a_tampered_history_is_refused(store: SQLiteGraphStore, home: Path) -> None:
    path = home / "finance.json"
    ok("playbook", "export", "finance", "--out", str(path))
    data = json.loads(path.read_text())
    data["history"][0]["after"][0]["content"] = "Something else."
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="does not match"):
        raise fails("playbook", "import", str(path), "--name", "copy")
    del data["history"][-1]
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="without gaps"):
        raise fails("playbook", "import", str(path), "--name", "copy")
    assert store.list_playbooks() == ["finance"]


def test_unknown_playbook_is_one_message_and_exit_2(
    store: SQLiteGraphStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("show", "history", "export"):
        monkeypatch.setattr(sys, "argv", ["evergraph", "playbook", command, "fiance"])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "no playbook named 'fiance'" in err and "it holds 'finance'" in err
        assert "playbook list" in err and "Traceback" not in err
