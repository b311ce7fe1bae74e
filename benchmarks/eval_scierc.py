"""SciERC relation F1 of the extractor, with and without sampling-based confidence filtering.

    .venv/bin/python benchmarks/eval_scierc.py ../shared/data/scierc/dev.json \\
        --model-url http://127.0.0.1:8113/v1 --model qwen2.5-coder-0.5b --engine vllm \\
        --samples 5 --limit 10 --out benchmarks/results

Input: SciERC in DyGIE/PURE JSON lines (`doc_key`, `sentences` as token lists, `ner` and
`relations` with document-level inclusive token spans). Each abstract is one item: its tokens
joined by spaces are the text, so gold spans are substrings of it.

Scoring is SciERC's relation micro P/R/F1 in string mode, as the data's SOURCE.md allows for
LLM extractors that output strings: a predicted (head, label, tail) matches a gold one after
lower-casing and whitespace normalisation; COMPARE and CONJUNCTION are symmetric, so either
direction matches. Relations with a `Generic` argument ("this method") are dropped from the gold
side, and the extractor is not offered that type. Reported per variant (see
`evergraph.evals.extraction`), plus `unlabelled`: the same match ignoring the label.

Writes `<file stem>.<model>.predictions.jsonl` and `.scores.json` to `--out`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from evergraph.agents.extract_rules import norm
from evergraph.evals.extraction import (
    VARIANTS,
    Item,
    Triple,
    add_model_args,
    print_usage,
    sample_items,
    save_run,
    triples_json,
)
from evergraph.graph.schema import GraphSchema, RelationType

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared/data/scierc/dev.json"
TYPES = ["Task", "Method", "Metric", "Material", "OtherScientificTerm"]
LABELS = {
    "USED-FOR": "B is used for A: a method, tool or data used for a task",
    "FEATURE-OF": "A is a feature or property of B",
    "HYPONYM-OF": "A is a kind of B",
    "PART-OF": "A is a part of B",
    "EVALUATE-FOR": "A (a metric or dataset) evaluates B",
    "COMPARE": "A is compared with B",
    "CONJUNCTION": "A and B are used or mentioned together, e.g. listed",
}
SYMMETRIC = {"COMPARE", "CONJUNCTION"}
SCHEMA = GraphSchema(
    entity_types=TYPES,
    relations=[RelationType(name=k, description=v) for k, v in LABELS.items()],
)

Key = tuple[str, str, str]


def gold_relations(doc: dict[str, Any]) -> tuple[str, list[Key]]:
    """The abstract's text and its gold (head, LABEL, tail) strings, Generic ones left out."""
    tokens = [t for sentence in doc["sentences"] for t in sentence]
    generic = {(s, e) for sent in doc["ner"] for s, e, kind in sent if kind == "Generic"}
    gold = [
        (" ".join(tokens[s1 : e1 + 1]), label, " ".join(tokens[s2 : e2 + 1]))
        for sent in doc["relations"]
        for s1, e1, s2, e2, label in sent
        if (s1, e1) not in generic and (s2, e2) not in generic
    ]
    return " ".join(tokens), gold


def keys(triples: Iterable[Key], *, labelled: bool = True) -> set[Key]:
    """Normalised match keys; symmetric relations in a canonical direction."""
    found = set()
    for head, label, tail in triples:
        h, t = norm(head), norm(tail)
        if label.upper() in SYMMETRIC or not labelled:
            h, t = min(h, t), max(h, t)
        found.add((h, label.upper() if labelled else "", t))
    return found


def micro(gold: Sequence[set[Key]], predicted: Sequence[set[Key]]) -> dict[str, float]:
    hits = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    p = hits / n_pred if n_pred else 0.0
    r = hits / n_gold if n_gold else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        "predicted": n_pred,
        "gold": n_gold,
        "correct": hits,
    }


def as_keys(triples: Sequence[Triple]) -> list[Key]:
    return [(t.subject, t.predicate, t.object) for t in triples]


def evaluate(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    docs = docs[: args.limit] if args.limit else docs
    texts_gold = [gold_relations(d) for d in docs]
    items = [
        Item(d["doc_key"], text, SCHEMA) for d, (text, _) in zip(docs, texts_gold, strict=True)
    ]
    run = sample_items(items, args, path.name)
    drawn = run.drawn
    gold = [g for _, g in texts_gold]
    scores: dict[str, Any] = {}
    for variant in VARIANTS:
        predicted = [as_keys(d.variants[variant]) for d in drawn]
        scores[variant] = micro([keys(g) for g in gold], [keys(p) for p in predicted])
        scores[f"{variant}_unlabelled"] = micro(
            [keys(g, labelled=False) for g in gold],
            [keys(p, labelled=False) for p in predicted],
        )
    predictions = (
        {"id": d.item.id, "gold": g, **{v: triples_json(d.variants[v]) for v in VARIANTS}}
        for d, g in zip(drawn, gold, strict=True)
    )
    return save_run(run, path, args.out, scores, predictions)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=[DEFAULT_FILE])
    add_model_args(parser)
    args = parser.parse_args(argv)
    for path in args.files:
        result = evaluate(path, args)
        print(f"{path.name}  model={result['model']}  n={result['samples']}")
        print(f"{'variant':22} {'P':>6} {'R':>6} {'F1':>6}  correct/predicted/gold")
        for variant, s in result["scores"].items():
            print(
                f"{variant:22} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f}  "
                f"{s['correct']}/{s['predicted']}/{s['gold']}"
            )
        print_usage(result)


if __name__ == "__main__":
    main()
