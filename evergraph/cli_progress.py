"""The progress bar of the CLI's long jobs that count steps: one row per kind of step."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn


class StepBars:
    """A rich progress bar with a row per label, as a `(label, done, total)` callback.

    A row appears on a label's first report, so a job need not announce its phases. On a
    console that is not a terminal rich draws the bars once, in their final state, at the end.
    """

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.rows: dict[str, TaskID] = {}

    def __enter__(self) -> StepBars:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, label: str, done: int, total: int) -> None:
        if label not in self.rows:
            self.rows[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.rows[label], completed=done, total=total)
