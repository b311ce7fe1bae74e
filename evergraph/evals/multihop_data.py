"""Multi-hop QA files (HotpotQA and MuSiQue formats, as JSONL) as items over one corpus, the
official answer metrics, and the factorised metrics over the harness's prediction rows.

Both formats are read by their fields, line by line, so any file of either format works:
HotpotQA has `context` ([title, sentences] pairs) and `supporting_facts` ([title, sentence]);
MuSiQue has `paragraphs` ({title, paragraph_text, is_supporting}) and `answer_aliases`. A
paragraph's identity is its content (title and text), so the same paragraph in two questions
is one passage of the corpus.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from evergraph.errors import UsageError
from evergraph.retrieval.index import Passage
from evergraph.retrieval.text import normalize_answer

_SPECIAL = frozenset({"yes", "no", "noanswer"})  # HotpotQA: these must match exactly


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answers: tuple[str, ...]  # the answer and its aliases
    answerable: bool
    passages: tuple[Passage, ...]
    gold: frozenset[str]  # chunk ids of the supporting paragraphs
    derived_from: str = ""  # a contrast item's answerable twin
    removed_idx: int | None = None  # the twin's supporting paragraph this item lacks
    paragraph_idx: tuple[int, ...] = ()  # MuSiQue's idx of each passage, in order


def _hotpot(row: Mapping[str, Any]) -> Item:
    passages = tuple(Passage(title, "".join(sents).strip()) for title, sents in row["context"])
    titles = {t for t, _ in row["supporting_facts"]}
    return Item(
        id=str(row["_id"]),
        question=row["question"],
        answers=(row["answer"],),
        answerable=True,
        passages=passages,
        gold=frozenset(p.chunk_id for p in passages if p.title in titles),
    )


def _musique(row: Mapping[str, Any]) -> Item:
    paragraphs = row["paragraphs"]
    passages = tuple(Passage(p["title"], p["paragraph_text"].strip()) for p in paragraphs)
    gold = (p.chunk_id for p, raw in zip(passages, paragraphs, strict=True) if raw["is_supporting"])
    return Item(
        id=str(row["id"]),
        question=row["question"],
        answers=(row["answer"], *row.get("answer_aliases", [])),
        answerable=bool(row.get("answerable", True)),
        passages=passages,
        gold=frozenset(gold),
        derived_from=row.get("derived_from", ""),
        removed_idx=row.get("removed_supporting_idx"),
        paragraph_idx=tuple(p["idx"] for p in paragraphs),
    )


FORMAT_FIX = (
    "pass a JSONL file in the HotpotQA (context, supporting_facts) or MuSiQue "
    "(paragraphs, question_decomposition) format"
)


def read_items(path: Path) -> list[Item]:
    """Every item of a HotpotQA- or MuSiQue-format JSONL file, in file order."""
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}", fix="pass an existing file") from e
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: not UTF-8 text", fix=FORMAT_FIX) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(_hotpot(row) if "context" in row else _musique(row))
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(
                f"{path}:{number} is not a HotpotQA or MuSiQue record ({e!r})",
                fix=FORMAT_FIX,
            ) from None
    if not items:
        raise UsageError(f"{path} holds no question", fix=FORMAT_FIX)
    return items


def corpus(items: Iterable[Item], *, leave_out: Iterable[str] = ()) -> list[Passage]:
    """The distinct passages of all items, in first-seen order, without `leave_out` chunk ids."""
    skip = set(leave_out)
    unique = {p.chunk_id: p for item in items for p in item.passages if p.chunk_id not in skip}
    return list(unique.values())


def removed_passages(contrast: Sequence[Item], twins: Sequence[Item]) -> dict[str, Passage]:
    """For each contrast item, the supporting paragraph its construction removed (looked up in
    its answerable twin): it must be left out of the contrast corpus altogether, else another
    question's copy of the same paragraph would bring it back."""
    by_id = {t.id: t for t in twins}
    removed = {}
    for item in contrast:
        twin = by_id.get(item.derived_from)
        if twin is None or item.removed_idx is None:
            continue
        for idx, passage in zip(twin.paragraph_idx, twin.passages, strict=True):
            if idx == item.removed_idx:
                removed[item.id] = passage
    return removed


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 (official HotpotQA/SQuAD)."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    common = sum((Counter(_tokens(prediction)) & Counter(_tokens(gold))).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred.split()), common / len(ref.split())
    return 2 * precision * recall / (precision + recall)


def answer_scores(prediction: str | None, answers: Sequence[str]) -> tuple[float, float]:
    """(EM, F1), each the best over the gold answer and its aliases; a refusal scores 0."""
    if prediction is None:
        return 0.0, 0.0
    em = max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers)
    return em, max(f1_score(prediction, a) for a in answers)


def recall_at(ranked: Sequence[str], gold: frozenset[str], k: int) -> float:
    """Share of the gold passages among the first k."""
    return len(gold.intersection(ranked[:k])) / len(gold) if gold else 0.0


def mean(values: Iterable[float]) -> float | None:
    got = list(values)
    return round(fmean(got), 4) if got else None


def loop_metrics(answerable: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """EM/F1 and the factorised metrics over the answerable items' loop results."""
    sufficient = [r for r in answerable if r["search_sufficient"]]
    insufficient = [r for r in answerable if not r["search_sufficient"]]
    return {
        "items": len(answerable),
        "answer_em": mean(r["em"] for r in answerable),
        "answer_f1": mean(r["f1"] for r in answerable),
        "answered": mean(float(r["kind"] == "answer") for r in answerable),
        "read_sufficiency": mean(float(r["read_sufficient"]) for r in answerable),
        "search_sufficiency": mean(float(r["search_sufficient"]) for r in answerable),
        "knowledge_utilisation_em": mean(r["em"] for r in sufficient),
        "knowledge_utilisation_f1": mean(r["f1"] for r in sufficient),
        "refused_when_insufficient": mean(float(r["kind"] == "refusal") for r in insufficient),
        "cited_gold_share": mean(
            r["cited_gold"] for r in answerable if r["cited_gold"] is not None
        ),
        "mean_tokens": mean(r["tokens"] for r in answerable),
        "mean_seconds": mean(r["seconds"] for r in answerable),
    }


def refusal_metrics(
    twins: Mapping[str, dict[str, Any]], contrast: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Refusal on unanswerable contrast items vs answering their answerable twins."""
    refused = [float(r["kind"] == "refusal") for _, r in contrast]
    paired = [(twins[t], r) for t, r in contrast if t in twins]
    return {
        "contrast_items": len(contrast),
        "refused_unanswerable": mean(refused),
        "answered_answerable": mean(float(t["kind"] == "answer") for t, _ in paired),
        "answerability_accuracy": mean(
            [float(t["kind"] == "answer") for t, _ in paired]
            + [float(r["kind"] == "refusal") for _, r in paired]
        ),
        # MuSiQue-Full's pair: the twin answered correctly AND the contrast item refused
        "pair_em": mean(float(t["em"] == 1.0 and r["kind"] == "refusal") for t, r in paired),
        "pair_answer_refuse": mean(
            float(t["kind"] == "answer" and r["kind"] == "refusal") for t, r in paired
        ),
    }
