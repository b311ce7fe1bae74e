"""The analysis as CSV tables, one file per view, every concept included (the HTML shows the
top ones)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from evergraph.mapping.analytics import Analysis


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_tables(a: Analysis, out: Path) -> list[Path]:
    concepts = a.occurrences.concepts
    kind = {c: concepts[c].type if c in concepts else "" for c in a.frequency}
    community = a.community_of()
    return [
        _write(
            out / "papers_per_period.csv",
            ["period", "papers"],
            zip(a.periods, a.totals, strict=True),
        ),
        _write(
            out / "frequency.csv",
            ["concept", "type", "period", "papers", "share"],
            (
                (a.name(c), kind[c], p, n, round(n / total, 6) if total else 0.0)
                for c, counts in sorted(a.frequency.items(), key=lambda kv: a.name(kv[0]))
                for p, n, total in zip(a.periods, counts, a.totals, strict=True)
                if n  # sparse: a period missing for a concept means no paper named it
            ),
        ),
        _write(
            out / "trends.csv",
            ["concept", "direction", "z", "p", "q", "slope", "papers"],
            (
                (a.name(t.concept), t.direction(), t.z, t.p, t.q, t.slope, sum(t.counts))
                for t in a.trends
            ),
        ),
        _write(
            out / "centrality.csv",
            ["concept", "community", "degree", "pagerank", "betweenness", "communities_bridged"],
            (
                (
                    a.name(c.concept),
                    community.get(c.concept, -1),
                    c.degree,
                    c.pagerank,
                    c.betweenness,
                    c.communities_bridged,
                )
                for c in a.centrality
            ),
        ),
        _write(
            out / "communities.csv",
            ["period", "community", "concept"],
            (
                (p, i, a.name(c))
                for p, found in a.communities.items()
                for i, members in enumerate(found)
                for c in sorted(members, key=a.name)
            ),
        ),
        _write(
            out / "community_events.csv",
            ["period", "event", "before", "after"],
            (
                (e.period, e.kind, " ".join(map(str, e.before)), " ".join(map(str, e.after)))
                for e in a.events
            ),
        ),
    ]
