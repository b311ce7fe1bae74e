"""Task files for playbook training and evaluation, and how each kind is scored.

A task file is JSONL, one item a line, in either form:
- ACE's finance files: `{"context": <the whole prompt>, "target": <gold>}`;
- the generic form: `{"question": ..., "context": <optional>, "answer": <optional gold>}`;
each with an optional "id" (default: FILE-STEM:LINE). Items without a gold answer can be
evaluated for cost only, or learned from with environment feedback.

Scoring follows ACE's finance/data_processor.py (see the data's SOURCE.md):
- formula: prediction and gold parsed as floats after removing ','; correct when exactly
  equal (string equality when either does not parse);
- finer: both split on ','; the prediction truncated or padded to the gold's length, then
  compared position by position, case-insensitively, numeric-looking values as numbers;
  accuracy is correct tags over gold tags (micro);
- exact: normalised string equality (case, spacing, trailing punctuation ignored).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from evergraph.errors import UsageError
from evergraph.playbooks.models import normalise


class TaskItem(BaseModel):
    id: str
    task: str  # the full text the generator is given
    gold: str | None = None


class TaskKind(StrEnum):
    formula = "formula"
    finer = "finer"
    exact = "exact"


class Score(NamedTuple):
    hits: int  # correct units: 1 for a right number, k for k right tags
    total: int  # units judged

    @property
    def correct(self) -> bool:
        return self.total > 0 and self.hits == self.total


def read_tasks(path: Path) -> list[TaskItem]:
    """Every item of a task file, in order; a malformed line is a usage error naming it."""
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise UsageError(f"task file {path} {problem}", fix="pass a JSONL task file")
    items: list[TaskItem] = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    items.append(_item(path, number, line))
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", fix="pass a JSONL task file") from None
    if not items:
        raise UsageError(f"{path} holds no task", fix="one JSON object a line")
    return items


def _item(path: Path, number: int, line: str) -> TaskItem:
    where = f"{path}:{number}"
    fix = 'each line: {"context", "target"} or {"question", "context"?, "answer"?}'
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise UsageError(f"{where} is not JSON: {e.msg}", fix=fix) from None
    if not isinstance(row, dict):
        raise UsageError(f"{where} is not a JSON object", fix=fix)
    if "question" in row:
        task = "\n\n".join(str(row[k]) for k in ("context", "question") if row.get(k))
        gold = row.get("answer")
    elif "context" in row:
        task, gold = str(row["context"]), row.get("target")
    else:
        raise UsageError(f"{where} has neither a question nor a context", fix=fix)
    return TaskItem(
        id=str(row.get("id", f"{path.stem}:{number}")),
        task=task,
        gold=None if gold is None else str(gold),
    )


def detect_kind(items: list[TaskItem]) -> TaskKind:
    """FiNER by its prompt, formula when every gold is a number, else exact match."""
    if any("US GAAP tags" in i.task for i in items[:5]):
        return TaskKind.finer
    golds = [i.gold for i in items if i.gold is not None]
    if golds and all(_number(g) is not None for g in golds):
        return TaskKind.formula
    return TaskKind.exact


def score(kind: TaskKind, prediction: str, gold: str) -> Score:
    match kind:
        case TaskKind.formula:
            return Score(int(_same_value(prediction.strip(), gold.strip())), 1)
        case TaskKind.finer:
            golds = [g.strip() for g in gold.split(",")]
            predicted = [p.strip() for p in prediction.split(",")][: len(golds)]
            predicted += [""] * (len(golds) - len(predicted))
            hits = sum(_same_tag(p, g) for p, g in zip(predicted, golds, strict=True))
            return Score(hits, len(golds))
        case TaskKind.exact:
            return Score(int(normalise(prediction) == normalise(gold)), 1)


def judge(kind: TaskKind) -> Callable[[str, str], bool]:
    """(answer, gold) -> entirely correct: what the reflector is told."""
    return lambda answer, gold: score(kind, answer, gold).correct


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _same_value(a: str, b: str) -> bool:
    x, y = _number(a), _number(b)
    return a == b if x is None or y is None else x == y


def _same_tag(a: str, b: str) -> bool:
    x, y = _number(a), _number(b)
    return a.casefold() == b.casefold() if x is None or y is None else x == y
