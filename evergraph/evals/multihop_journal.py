"""The loop results of an eval run, kept as they come: an interrupted run (Ctrl-C, a crash,
a model server going away) resumes where it stopped instead of asking every question again.

One JSON line per finished question, appended and flushed at once; a line cut short by a
kill is ignored. A line counts only for the same question under the same model and loop
settings (its key), so changing either asks again. The run removes the file once its scores
and predictions are written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evergraph.graph.models import content_id


class LoopJournal:
    def __init__(self, path: Path, *, model: str, settings: str) -> None:
        self.path = path
        self._salt = (model, settings)
        self._done: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._done[entry["key"]] = entry["loop"]
                except (ValueError, KeyError, TypeError):
                    continue  # the line a kill cut short

    def key(self, item_id: str, question: str) -> str:
        return content_id(*self._salt, item_id, question)

    def get(self, item_id: str, question: str) -> dict[str, Any] | None:
        return self._done.get(self.key(item_id, question))

    def add(self, item_id: str, question: str, loop: dict[str, Any]) -> None:
        line = json.dumps({"key": self.key(item_id, question), "loop": loop}, ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    @property
    def resumed(self) -> int:
        return len(self._done)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
