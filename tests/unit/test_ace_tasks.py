"""Task files in both forms, and scoring as ACE's finance protocol does it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evergraph.errors import UsageError
from evergraph.evals.ace_tasks import TaskKind, detect_kind, judge, read_tasks, score

ACE = Path(__file__).resolve().parents[3] / "shared/data/ace_finance"


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("prediction", "gold", "hits"),
    [
        ("2.0", "2.0", 1),
        ("2.00", "2.0", 1),  # equal as numbers
        ("1,000.00", "1000.0", 1),
        ("8.33", "8.333", 0),  # exact: no tolerance
        ("two", "2.0", 0),
        ("n/a", "n/a", 1),  # neither parses: string equality
    ],
)
def test_formula_is_an_exact_numeric_match(prediction: str, gold: str, hits: int) -> None:
    assert score(TaskKind.formula, prediction, gold) == (hits, 1)


def test_finer_counts_tags_position_by_position() -> None:
    gold = "DebtInstrumentFaceAmount,LineOfCredit,SaleOfStockPricePerShare"
    assert score(TaskKind.finer, "debtinstrumentfaceamount, LineOfCredit, Revenue", gold) == (2, 3)
    assert score(TaskKind.finer, "DebtInstrumentFaceAmount", gold) == (1, 3)  # padded
    too_many = f"{gold},Extra,Tags"
    assert score(TaskKind.finer, too_many, gold).correct  # truncated to the gold's length
    assert score(TaskKind.finer, "1.50,x", "1.5,x") == (2, 2)  # numbers compare as numbers


def test_exact_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert score(TaskKind.exact, "  Paris. ", "paris").correct
    assert not score(TaskKind.exact, "Lyon", "Paris").correct
    assert judge(TaskKind.exact)("PARIS", "Paris")


def test_both_forms_are_read_with_ids_and_gold(tmp_path: Path) -> None:
    ace = write(tmp_path / "ace.jsonl", [{"context": "Use formula X. Answer:", "target": "2.0"}])
    generic = write(
        tmp_path / "generic.jsonl",
        [
            {
                "id": "q1",
                "question": "Capital of France?",
                "context": "France is...",
                "answer": "Paris",
            },
            {"question": "No gold here?"},
        ],
    )
    [a] = read_tasks(ace)
    assert (a.id, a.task, a.gold) == ("ace:1", "Use formula X. Answer:", "2.0")
    first, second = read_tasks(generic)
    assert first.id == "q1" and first.task == "France is...\n\nCapital of France?"
    assert first.gold == "Paris" and second.gold is None and second.id == "generic:2"
    assert detect_kind(read_tasks(ace)) is TaskKind.formula
    assert detect_kind(read_tasks(generic)) is TaskKind.exact


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json\n", "is not JSON"), ("[1, 2]\n", "not a JSON object"), ('{"a": 1}\n', "neither")],
)
def test_a_malformed_line_is_a_usage_error_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok?"}\n' + content, encoding="utf-8")
    with pytest.raises(UsageError, match=f"bad.jsonl:2 .*{message}"):
        read_tasks(path)


def test_a_missing_or_empty_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_tasks(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no task"):
        read_tasks(tmp_path / "empty.jsonl")


def test_the_ace_finance_files_are_read_and_detected() -> None:
    formula, finer = (
        ACE / "formula_val_subset_300.jsonl",
        ACE / "finer_val_batched_500_samples.jsonl",
    )
    if not (formula.is_file() and finer.is_file()):
        pytest.skip(f"{ACE} is not here")
    f_items, n_items = read_tasks(formula), read_tasks(finer)
    assert len(f_items) == 300 and len(n_items) == 500
    assert detect_kind(f_items) is TaskKind.formula and detect_kind(n_items) is TaskKind.finer
    gold = n_items[0].gold or ""
    assert score(TaskKind.finer, gold, gold) == (len(gold.split(",")), len(gold.split(",")))
