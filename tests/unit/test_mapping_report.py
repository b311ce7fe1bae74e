"""The report: a self-contained HTML page, CSV tables and PNG charts from a mapped store."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergraph.cli import app
from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.llm.base import LLM
from evergraph.mapping.periods import Freq
from evergraph.mapping.report import ReportOptions, write_report
from tests.unit.mapping_fixtures import PAPERS, run_map

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def mapped(tmp_path: Path) -> Path:
    out = tmp_path / "map"
    _, store = run_map(tmp_path, out)
    store.close()
    return out


def graph_payload(html: str) -> dict[str, list[dict[str, object]]]:
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert found is not None
    payload: dict[str, list[dict[str, object]]] = json.loads(found[1])
    return payload


def test_the_html_is_self_contained_and_carries_the_graph(tmp_path: Path) -> None:
    from evergraph.graph.store.sqlite import SQLiteGraphStore

    store = SQLiteGraphStore(mapped(tmp_path) / "graph.db")
    options = ReportOptions(freq=Freq.quarter, min_papers=2, png=False)
    written = write_report(store, tmp_path / "report", options)
    html = written[0].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    assert "<canvas" in html and "2008-Q4" in html
    data = graph_payload(html)
    names = {n["name"] for n in data["nodes"]}
    assert names == {c for _, _, cs in PAPERS for c in cs}
    assert len(data["edges"]) == 7  # the co-occurring pairs, relations joining the same pairs
    by_name = {str(n["name"]): n for n in data["nodes"]}
    assert by_name["exoplanets"]["d"] == 0 and by_name["exoplanets"]["p"] == [6]  # 2008-Q3

    tables = {p.name: p for p in written if p.suffix == ".csv"}
    with tables["frequency.csv"].open() as f:
        rows = list(csv.DictReader(f))
    lensing = [r for r in rows if r["concept"] == "weak lensing" and r["papers"] != "0"]
    assert {(r["period"], r["papers"]) for r in lensing} == {("2008-Q1", "1"), ("2008-Q2", "1"),
                                                               ("2008-Q4", "1")}  # fmt: skip
    with tables["centrality.csv"].open() as f:
        top = next(csv.DictReader(f))
    assert top["concept"] == "dark matter"  # the bridge between the two topics
    store.close()


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="PNG charts need matplotlib (the viz extra)")
def test_the_report_command_writes_png_charts(tmp_path: Path) -> None:
    out = mapped(tmp_path)
    result = CliRunner().invoke(app, ["report", str(out), "--min-papers", "2"])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in (out / "report").glob("*.png"))
    assert pngs == ["fading.png", "papers_per_period.png", "rising.png", "top_concepts.png"]
    assert all((out / "report" / p).read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_report_on_a_folder_without_a_map_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, UsageError)
    assert "holds no map" in str(result.exception)


def test_the_map_command_maps_papers_and_prints_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evergraph.runtime
    from evergraph.embed.testing import HashingEmbedder
    from tests.unit.mapping_fixtures import scripted, write_papers, write_schema

    caps: list[int] = []

    def build_llm(settings: Settings) -> AbstractAsyncContextManager[LLM]:
        caps.append(settings.llm.max_concurrency)
        return scripted()

    monkeypatch.setattr(evergraph.runtime, "build_llm", build_llm)
    monkeypatch.setattr(evergraph.runtime, "build_embedder", lambda settings: HashingEmbedder())
    monkeypatch.setenv("EVERGRAPH_HOME", str(tmp_path / "home"))
    out = tmp_path / "map"
    args = ["map", str(write_papers(tmp_path / "papers.jsonl")), "--out", str(out),
            "--schema", str(write_schema(tmp_path / "schema.json")), "--samples", "2"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--concurrency", "7"])
    assert result.exit_code == 0, result.output
    assert caps and set(caps) == {7}  # --concurrency lifts the client's cap on requests in flight
    assert f"{len(PAPERS)} of {len(PAPERS)}" in result.output
    assert (out / "graph.db").is_file() and (out / "checkpoints.db").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and f"0 of {len(PAPERS)}" in again.output
