"""The self-contained HTML report: the interactive concept graph, trend charts, tables.

Everything is inline (data as JSON, `report_assets` CSS and JS, charts as SVG drawn here), so
the file opens offline and can be mailed around. The graph shows the `MAX_NODES` concepts with
the most links and, among them, the `MAX_EDGES` strongest links (a denser drawing is a grey
blot); the CSV tables next to it hold all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from evergraph.mapping.analytics import Analysis
from evergraph.mapping.report_assets import CSS, JS
from evergraph.mapping.trends import Trend

MAX_NODES = 300
MAX_EDGES = 1500
LABELLED = 25  # the best-connected concepts get a name on the canvas
TOP_TRENDS = 6
TOP_TABLE = 20
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#ad494a",
]  # fmt: skip


def graph_data(a: Analysis) -> dict[str, Any]:
    """Nodes (name, type, community, links, periods) and edges of the shown subgraph."""
    g = a.graph
    keep = sorted(g.nodes, key=lambda n: (-g.degree(n), a.name(n)))[:MAX_NODES]
    index = {n: i for i, n in enumerate(keep)}
    community = a.community_of()
    period_index = {p: i for i, p in enumerate(a.periods)}
    seen_in = {c: [i for i, x in enumerate(v) if x] for c, v in a.frequency.items()}
    concepts = a.occurrences.concepts
    nodes = [
        {
            "name": a.name(n),
            "type": concepts[n].type if n in concepts else "",
            "c": community.get(n, -1),
            "d": g.degree(n),
            "p": seen_in.get(n, []),
            "label": i < LABELLED,
        }
        for i, n in enumerate(keep)
    ]
    shown = [(u, v, float(w)) for u, v, w in g.edges(data="confidence", default=1.0)
             if u in index and v in index]  # fmt: skip
    strongest = sorted(shown, key=lambda e: (-e[2], index[e[0]], index[e[1]]))[:MAX_EDGES]
    edges = [
        {
            "s": index[u],
            "t": index[v],
            "w": round(w, 3),
            "p": [period_index[p] for p in a.edge_periods.get((min(u, v), max(u, v)), [])],
        }
        for u, v, w in strongest
    ]
    return {"nodes": nodes, "edges": edges, "palette": PALETTE}


def sparkline(trend: Trend, totals: Sequence[int], periods: Sequence[str], name: str) -> str:
    """A small SVG line chart of a concept's share of papers per period."""
    w, h, pad = 260, 110, 24
    shares = [c / n if n else None for c, n in zip(trend.counts, totals, strict=True)]
    top = max((s for s in shares if s is not None), default=0.0) or 1.0
    step = (w - 2 * pad) / max(len(shares) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{h - pad - (s / top) * (h - 2 * pad):.1f}"
        for i, s in enumerate(shares)
        if s is not None
    )
    colour = "#2ca02c" if trend.z > 0 else "#d62728"
    title = f"{name}: z = {trend.z:.2f}, q = {trend.q:.3g}"
    return (
        f'<div class="chart"><svg width="{w}" height="{h}" role="img" aria-label="{escape(title)}">'
        f'<text x="{pad}" y="14" font-size="12">{escape(name)}</text>'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        f'<text x="{pad}" y="{h - 6}" font-size="10" fill="#666">{escape(periods[0])}</text>'
        f'<text x="{w - pad}" y="{h - 6}" font-size="10" fill="#666" text-anchor="end">'
        f"{escape(periods[-1])}</text>"
        f'<text x="{w - pad}" y="14" font-size="10" fill="#666" text-anchor="end">'
        f"max {top:.0%} · z {trend.z:+.1f} · q {trend.q:.2g}</text></svg></div>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f'<td class="n">{v:.4g}</td>'
        if isinstance(v, int):
            return f'<td class="n">{v}</td>'
        return f"<td>{escape(str(v))}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _trend_section(a: Analysis, trends: Sequence[Trend], title: str) -> str:
    if not trends:
        return f"<h3>{title}</h3><p class='muted'>none significant</p>"
    charts = "".join(sparkline(t, a.totals, a.periods, a.name(t.concept)) for t in trends)
    return f"<h3>{title}</h3><div class='charts'>{charts}</div>"


def render(a: Analysis, *, title: str) -> str:
    rising = [t for t in a.trends if t.direction() == "rising"][:TOP_TRENDS]
    fading = [t for t in reversed(a.trends) if t.direction() == "fading"][:TOP_TRENDS]
    bridges = a.centrality[:TOP_TABLE]
    hubs = sorted(a.centrality, key=lambda c: (-c.pagerank, c.concept))[:TOP_TABLE]
    payload = json.dumps(graph_data(a)).replace("</", "<\\/")
    options = "".join(f'<option value="{i}">{escape(p)}</option>' for i, p in enumerate(a.periods))
    as_of = a.as_of.date().isoformat() if a.as_of else "now"
    legend = "".join(
        f'<span><i style="background:{PALETTE[i]}"></i>{escape(", ".join(_names(a, c)))}</span>'
        for i, c in enumerate(a.overall[: len(PALETTE)])
    )
    events = [
        (e.period, e.kind, str(e.before), str(e.after)) for e in a.events if e.kind != "continued"
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p class="muted">As of {as_of}: {sum(a.totals)} dated papers in {len(a.periods)} periods
({a.freq.value}), {a.graph.number_of_nodes()} concepts, {a.graph.number_of_edges()} links;
{len(a.trends)} concepts tested for a trend (Cochran-Armitage, Benjamini-Hochberg q &lt; 0.05).</p>
<h2>Concept graph</h2>
<div id="controls"><label>Period <select id="period"><option value="all">all</option>{options}
</select></label><label><input type="checkbox" id="cumulative"> up to this period</label>
<span id="graph-status" class="muted"></span></div>
<canvas id="graph"></canvas><div id="tip"></div>
<p class="legend">{legend}</p>
<h2>Trends</h2>
{_trend_section(a, rising, "Rising")}
{_trend_section(a, fading, "Fading")}
<h2>Bridges (betweenness)</h2>
{
        _table(
            ["concept", "betweenness", "communities bridged", "links"],
            [(a.name(c.concept), c.betweenness, c.communities_bridged, c.degree) for c in bridges],
        )
    }
<h2>Hubs (PageRank)</h2>
{
        _table(
            ["concept", "pagerank", "links"],
            [(a.name(c.concept), c.pagerank, c.degree) for c in hubs],
        )
    }
<h2>Communities over time</h2>
{
        _table(
            ["period", "communities", "largest"],
            [
                (p, len(cs), ", ".join(_names(a, cs[0])) if cs else "")
                for p, cs in a.communities.items()
            ],
        )
    }
{_table(["period", "event", "before", "after"], events)}
<script type="application/json" id="data">{payload}</script>
<script>{JS}</script>
</body></html>
"""


def _names(a: Analysis, community: frozenset[str], k: int = 3) -> list[str]:
    """A community's best-known members, to name it."""
    freq = {c: sum(a.frequency.get(c, [])) for c in community}
    return [a.name(c) for c in sorted(community, key=lambda c: (-freq[c], a.name(c)))[:k]]
