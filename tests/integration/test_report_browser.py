"""The HTML report in a real headless browser (Debian's chromium): it loads, the graph
renders, the period filter works, and nothing is logged to the console. Skipped without
chromium (`apt-get install chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from evergraph.mapping.periods import Freq
from evergraph.mapping.report import ReportOptions, write_report
from tests.unit.mapping_fixtures import run_map

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,1800", "--virtual-time-budget=10000"]  # fmt: skip


def browse(url: str, *extra: str) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the console messages it logged."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, "--enable-logging=stderr", "--v=0", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def status(dom: str) -> dict[str, int]:
    found = re.search(r'<span id="graph-status"([^>]*)>', dom)
    assert found is not None, dom[:2000]
    return {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', found[1])}


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The check below can fail: a page with a script error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>no_such_function();</script></body></html>")
    _, console = browse(page.as_uri(), "--dump-dom")
    assert any("no_such_function" in line for line in console)


def test_the_report_loads_renders_its_graph_and_logs_nothing(tmp_path: Path) -> None:
    _, store = run_map(tmp_path, tmp_path / "map")
    html = write_report(
        store, tmp_path / "report", ReportOptions(freq=Freq.quarter, min_papers=2, png=False)
    )[0]
    store.close()

    dom, console = browse(html.as_uri(), "--dump-dom")
    assert console == []
    shown = status(dom)
    assert shown["nodes"] == 6 and shown["edges"] == 7 and shown["painted"] > 500

    # 2007-Q2 alone: the paper on galaxy clusters, N-body simulations and dark matter
    dom, console = browse(html.as_uri() + "#period=1", "--dump-dom")
    assert console == [] and (status(dom)["nodes"], status(dom)["edges"]) == (3, 3)
    dom, _ = browse(html.as_uri() + "#period=4&upto", "--dump-dom")  # up to 2008-Q1
    assert status(dom)["nodes"] == 5

    shot = tmp_path / "report.png"
    browse(html.as_uri(), f"--screenshot={shot}")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
