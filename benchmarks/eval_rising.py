"""Topics stated before a mapping run, tested after it: does the map flag them as it should?

    .venv/bin/python benchmarks/eval_rising.py MAP_DIR benchmarks/predictions/astroph_rising.json \\
        [--since 2007-01] [--as-of 2008-12-31] [--period month] [--out OUT]

MAP_DIR is a folder written by `evergraph map`. The predictions file names topics, each a
case-insensitive regular expression over concept names and the direction expected of it
(rising, fading or flat), e.g. {"WMAP": {"pattern": "wmap", "expected": "rising"}}. A paper
counts for a topic when any concept the map tied to it matches (so "WMAP5" and "5 year WMAP
results" count once together); the topic's share of papers per period then goes through the
same Cochran-Armitage trend test as single concepts in the report, Benjamini-Hochberg corrected
over the topics. The concepts of each topic that the report itself tests (enough papers alone)
are listed with their own verdicts.

Writes one JSON line per topic (id, expected, found, counts, z, p, q, the matching concepts) to
OUT/<predictions stem>.predictions.jsonl and the tally to .scores.json; never asserts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.mapping.job import STORE
from evergraph.mapping.occurrences import read_occurrences
from evergraph.mapping.periods import Freq, period_of
from evergraph.mapping.trends import MIN_PAPERS, trends


def topic_counts(
    by_paper: dict[str, set[str]],
    papers: dict[str, datetime],
    names: dict[str, str],
    pattern: re.Pattern[str],
    periods: list[str],
    freq: Freq,
) -> tuple[list[int], set[str]]:
    """Papers per period naming a matching concept, and the concepts that matched."""
    index = {p: i for i, p in enumerate(periods)}
    counts = [0] * len(periods)
    matched: set[str] = set()
    for paper, concepts in by_paper.items():
        hits = {c for c in concepts if pattern.search(names[c]) or pattern.search(c)}
        if hits and paper in papers:
            counts[index[period_of(papers[paper], freq)]] += 1
            matched |= hits
    return counts, matched


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("map_dir", type=Path)
    p.add_argument("predictions", type=Path)
    p.add_argument("--since", default="2007-01", help="first period (YYYY-MM)")
    p.add_argument("--as-of", help="last day (YYYY-MM-DD): later papers are left out")
    p.add_argument("--period", choices=[f.value for f in Freq], default="month")
    p.add_argument("--out", type=Path, default=Path("eval_out"))
    args = p.parse_args()

    store_path = args.map_dir / STORE
    if not store_path.is_file():
        sys.exit(f"no map at {args.map_dir}: run `evergraph map ... --out {args.map_dir}`")
    topics: dict[str, dict[str, str]] = json.loads(args.predictions.read_text(encoding="utf-8"))
    freq = Freq(args.period)
    since = datetime.fromisoformat(f"{args.since}-01").replace(tzinfo=UTC)
    as_of = (
        datetime.fromisoformat(args.as_of).replace(tzinfo=UTC, hour=23, minute=59)
        if args.as_of
        else None
    )
    with SQLiteGraphStore(store_path) as store:
        occ = read_occurrences(store, since=since, as_of=as_of)
    periods, totals = occ.periods(freq), occ.totals(freq)
    names = {c: concept.name for c, concept in occ.concepts.items()}
    per_concept = occ.counts(freq)
    single = {t.concept: t for t in trends(per_concept, totals, min_papers=MIN_PAPERS)}

    counts: dict[str, list[int]] = {}
    matched: dict[str, set[str]] = {}
    for topic, spec in topics.items():
        pattern = re.compile(spec["pattern"], re.IGNORECASE)
        counts[topic], matched[topic] = topic_counts(
            occ.by_paper, occ.papers, names, pattern, periods, freq
        )
    tested = {t.concept: t for t in trends(counts, totals, min_papers=1)}

    rows: list[dict[str, Any]] = []
    for topic, spec in topics.items():
        t = tested.get(topic)
        ranked = sorted(matched[topic], key=lambda c: (-sum(per_concept.get(c, [])), names[c]))
        rows.append(
            {
                "id": topic,
                "expected": spec["expected"],
                "found": t.direction() if t else "untested (no paper)",
                "papers": sum(counts[topic]),
                "counts": counts[topic],
                "z": t.z if t else None,
                "p": t.p if t else None,
                "q": t.q if t else None,
                "concepts": [names[c] for c in ranked],
                "concepts_tested_alone": {
                    names[c]: single[c].direction() for c in ranked if c in single
                },
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / args.predictions.stem
    with stem.with_suffix(".predictions.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    scores = {
        "map": str(args.map_dir),
        "papers": sum(totals),
        "periods": periods,
        "papers_per_period": totals,
        "topics": len(rows),
        "as_expected": sum(r["found"] == r["expected"] for r in rows),
        "concepts_tested": len(single),
        "concepts_rising": sorted(names[c] for c, t in single.items() if t.direction() == "rising"),
        "concepts_fading": sorted(names[c] for c, t in single.items() if t.direction() == "fading"),
        "command": " ".join(["benchmarks/eval_rising.py", *sys.argv[1:]]),
    }
    stem.with_suffix(".scores.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")
    for r in rows:
        z = "" if r["z"] is None else f" z={r['z']:+.2f} q={r['q']:.3g}"
        print(f"{r['id']}: expected {r['expected']}, found {r['found']}{z}; {r['papers']} papers")
    print(f"{scores['as_expected']} of {len(rows)} topics as expected; "
          f"{len(single)} concepts tested alone, rising {scores['concepts_rising']}, "
          f"fading {scores['concepts_fading']}")  # fmt: skip
    print(f"wrote {stem}.predictions.jsonl and .scores.json")


if __name__ == "__main__":
    main()
