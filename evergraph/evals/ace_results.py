"""Write and print the passes of a playbook run: one JSON line per prediction, the scores
next to them, and a table — shared by `evergraph playbook train|eval` and benchmarks/."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evergraph.agents.ace_adapt import Pass

COLUMNS = {
    "items": "items",
    "accuracy": "accuracy",
    "items_all_correct": "all right",
    "tokens_per_task": "tokens/task",
    "calls_per_task": "calls/task",
    "seconds_per_task": "s/task",
    "playbook_bullets": "bullets",
    "playbook_tokens": "pb tokens",
    "ops_applied": "ops",
}


def write_results(stem: Path, passes: Sequence[Pass], meta: Mapping[str, Any]) -> dict[str, Any]:
    """`<stem>.predictions.jsonl` (a line per prediction, its pass named) and
    `<stem>.scores.json` (`meta` plus each pass's scores); returns the scores."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with Path(f"{stem}.predictions.jsonl").open("w", encoding="utf-8") as f:
        for p in passes:
            for pred in p.predictions:
                correct = pred.total > 0 and pred.hits == pred.total
                row = {"pass": p.label, **pred.model_dump(), "correct": correct}
                f.write(json.dumps(row) + "\n")
    scores = {**meta, "passes": [p.scores() for p in passes]}
    Path(f"{stem}.scores.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return scores


def print_passes(passes: Sequence[Pass], out: Console, title: str = "") -> None:
    table = Table("pass", *COLUMNS.values(), title=title or None)
    for p in passes:
        s = p.scores()
        table.add_row(p.label, *(_cell(s[k]) for k in COLUMNS))
    out.print(table)


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
