"""The graph commands as a user meets them: help that teaches, one message per mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest

from evergraph.cli_graph_ops import parse_when
from evergraph.errors import UsageError
from evergraph.graph.store.sqlite import SQLiteGraphStore
from tests.unit.test_build import build_for_real
from tests.unit.test_cli import run


def test_help_lists_and_teaches_the_graph_commands(tmp_path: Path) -> None:
    r = run("--help", home=tmp_path)
    assert all(c in r.stdout for c in ("ingest", "facts", "entity", "export"))
    ingest = run("ingest", "--help", home=tmp_path)
    assert ingest.returncode == 0
    for words in ("--schema", "--samples", "--limit", "resumes", "date order", "agreement"):
        assert words in flat(ingest.stdout)
    facts = run("facts", "--help", home=tmp_path)
    assert "--as-of" in facts.stdout and "2019-03" in flat(facts.stdout)


def flat(text: str) -> str:
    """Help text without rich's box and line wrapping."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019", datetime(2019, 1, 1, tzinfo=UTC)),
        ("2019-03", datetime(2019, 3, 1, tzinfo=UTC)),
        ("2019-03-31", datetime(2019, 3, 31, tzinfo=UTC)),
        ("2019-03-31T12:30:00Z", datetime(2019, 3, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_are_lenient(text: str, expected: datetime) -> None:
    assert parse_when(text, "--as-of") == expected


@pytest.mark.parametrize("text", ["yesterday", "2019-13", "31/03/2019", ""])
def test_a_bad_date_is_a_usage_error_with_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match="is not a date") as e:
        parse_when(text, "--as-of")
    assert e.value.fix is not None and "2019-03-31" in e.value.fix


def test_facts_with_a_bad_date_or_unknown_entity_is_one_message(tmp_path: Path) -> None:
    r = run("facts", "M31", "--as-of", "last spring", home=tmp_path)
    assert r.returncode == 2 and "is not a date" in r.stderr and "Traceback" not in r.stderr
    r = run("facts", "M31", home=tmp_path)
    assert r.returncode == 2 and "no entity named 'M31'" in r.stderr
    assert "Traceback" not in r.stderr


def test_ingest_mistakes_are_one_message(tmp_path: Path) -> None:
    r = run("ingest", str(tmp_path / "missing.jsonl"), home=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "M31 is a galaxy."}\n')
    r = run("ingest", str(docs), "--schema", str(tmp_path / "nope.json"), home=tmp_path)
    assert r.returncode == 2 and "schema file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["ingest", "map"])
def test_a_bad_record_is_reported_once(tmp_path: Path, command: str) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": }\n')
    extra = ["--out", str(tmp_path / "map")] if command == "map" else []
    r = run(command, str(docs), *extra, home=tmp_path)
    said = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in said
    assert said.count("docs.jsonl:1: not JSON") == 1, said


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A store built by the real pipeline from six dated documents (scripted LLM)."""
    store = SQLiteGraphStore(tmp_path / "evergraph.db")
    build_for_real(store, tmp_path / "cp.db")
    store.close()
    return tmp_path


def test_facts_as_of_and_entity_history_read_the_built_graph(built: Path) -> None:
    now = run("facts", "telescope t1", home=built)
    assert now.returncode == 0, now.stderr
    assert "observed" in now.stdout and "galaxy G1" in now.stdout and "0.95" in now.stdout
    before = run("facts", "Telescope T1", "--as-of", "2019-01", home=built)
    assert "no facts" in before.stdout  # stated by a document of June 2019
    entity = run("entity", "Telescope T1", home=built)
    assert entity.returncode == 0, entity.stderr
    for words in ("Instrument", "Telescope T1 observed galaxy G1", "agreement 1.00", "history"):
        assert words in flat(entity.stdout)


def test_entities_and_export(built: Path) -> None:
    top = run("entities", "--top", "3", "--names", home=built)
    assert top.returncode == 0 and len(top.stdout.splitlines()) == 3
    out = built / "graph.graphml"
    r = run("export", "--format", "graphml", "--out", str(out), "--as-of", "2020", home=built)
    assert r.returncode == 0, r.stderr
    graph = nx.read_graphml(out)
    assert graph.number_of_edges() == 3  # documents of 2018, 2019 and 2020
    r = run("export", "--format", "xml", "--out", str(out), home=built)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_schema_or_text_field_mistake_is_one_message(tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "M31 is a galaxy."}\n')
    schema = tmp_path / "schema.json"
    schema.write_bytes(b'{"entity_types": ["\xff\xfe"]}')
    r = run("ingest", str(docs), "--schema", str(schema), home=tmp_path)
    assert r.returncode == 2 and "schema file" in r.stderr and "Traceback" not in r.stderr
    table = tmp_path / "notes.csv"
    table.write_text("id,words\na,M31 is a galaxy.\n")
    r = run("ingest", str(table), home=tmp_path)
    assert r.returncode == 2 and "has no text field" in r.stderr
    assert "option" not in r.stderr  # ingest has no option naming the text field
