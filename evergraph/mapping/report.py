"""`evergraph report DIR`: the analysis of a mapped store written as HTML, CSV and PNG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from evergraph.graph.store.base import GraphStore
from evergraph.mapping.analytics import analyse
from evergraph.mapping.charts import write_charts
from evergraph.mapping.periods import Freq
from evergraph.mapping.report_html import render
from evergraph.mapping.tables import write_tables
from evergraph.mapping.trends import MIN_PAPERS

REPORT = "report.html"


@dataclass(frozen=True)
class ReportOptions:
    as_of: datetime | None = None
    since: datetime | None = None
    freq: Freq = Freq.year
    min_papers: int = MIN_PAPERS
    png: bool = True
    title: str = "Concept map"


def write_report(store: GraphStore, out: Path, options: ReportOptions) -> list[Path]:
    """Analyse the store and write the report files into `out`; returns them, HTML first."""
    analysis = analyse(
        store,
        as_of=options.as_of,
        since=options.since,
        freq=options.freq,
        min_papers=options.min_papers,
    )
    out.mkdir(parents=True, exist_ok=True)
    html = out / REPORT
    html.write_text(render(analysis, title=options.title), encoding="utf-8")
    written = [html, *write_tables(analysis, out)]
    if options.png:
        written += write_charts(analysis, out)
    return written
