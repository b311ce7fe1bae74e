"""Extraction quality on Text2KGBench, with and without sampling-based confidence filtering.

    .venv/bin/python benchmarks/eval_text2kg.py \\
        $T2K/ground_truth/ont_9_astronaut_ground_truth.jsonl \\
        --model-url http://127.0.0.1:8113/v1 --model qwen2.5-coder-0.5b --engine vllm \\
        --samples 5 --limit 20 --out benchmarks/results

(T2K=../shared/data/text2kgbench/dbpedia_webnlg; with no file, its astronaut file.)

Input: ground-truth JSONL (`{"id", "sent", "triples": [{"sub", "rel", "obj"}]}`); each file's
ontology (`{"concepts": [{"label"}], "relations": [{"label", "domain", "range"}]}`) is found by
its name (`ont_8_x_ground_truth.jsonl` -> `../ontologies/8_x_ontology.json`) or given with
`--ontology`. The ontology becomes the extractor's schema: ranges such as number, string, Date
and Year are literals; other classes are entity types.

Scoring follows Text2KGBench's evaluation (src/evaluation/run_eval.py), per sentence, averaged
over the sentences evaluated: triples are normalised (spaces and underscores removed,
lower-cased); predictions are first filtered to the relations present in the sentence's gold
triples (their rule), then precision / recall / F1 (all 0 with no prediction); ontology
conformance (OC) is the share of predicted relations in the ontology (1 with no prediction);
subject / object hallucination (SH / OH) is the share of predicted subjects / objects not found
in the sentence plus the ontology's concept labels. Difference: no Porter stemming (no nltk
here), so SH / OH are slightly stricter than the original's.

Writes `<file stem>.<model>[.notypes].predictions.jsonl` (one line per sentence: gold, each
variant's triples with quote and agreement) and the same `.scores.json` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

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

DATA = Path(__file__).resolve().parents[2] / "shared/data/text2kgbench/dbpedia_webnlg/ground_truth"
DEFAULT_FILES = [DATA / "ont_9_astronaut_ground_truth.jsonl"]
LITERAL_RANGES = {"", "number", "string", "date", "year"}


def ontology_path(ground_truth: Path) -> Path:
    m = re.fullmatch(r"ont_(.+)_ground_truth\.jsonl", ground_truth.name)
    if m is None:
        raise SystemExit(f"cannot tell the ontology of {ground_truth}; pass --ontology")
    return ground_truth.parent.parent / "ontologies" / f"{m[1]}_ontology.json"


def to_schema(ontology: dict[str, Any], *, types: bool = True) -> GraphSchema:
    """Literal ranges -> "literal"; capitalised classes -> entity types; the rest -> any.

    Without `types`, only the relation names and literal ranges are kept: the benchmark's
    ontologies give most relations their topic class as domain (birthPlace: Astronaut), which
    a model that types the subject as a Person then breaks."""
    concepts = {c["label"] for c in ontology["concepts"]}

    def kind(t: str) -> str | None:
        if t.strip().lower() in LITERAL_RANGES:
            return "literal"
        return t if t[:1].isupper() else None

    ends = {k for r in ontology["relations"] for k in (kind(r["domain"]), kind(r["range"])) if k}
    relations = [
        RelationType(
            name=r["label"],
            domain=kind(r["domain"]) if types else None,
            range=kind(r["range"]) if types or kind(r["range"]) == "literal" else None,
        )
        for r in ontology["relations"]
    ]
    if not types:
        return GraphSchema(relations=relations)
    return GraphSchema(entity_types=sorted((concepts | ends) - {"literal"}), relations=relations)


def squash(text: str) -> str:
    return re.sub(r"(_|\s+)", "", text).lower()


def score_sentence(
    gold: Sequence[dict[str, str]], predicted: Sequence[Triple], sentence: str,
    ontology: dict[str, Any],
) -> dict[str, float]:  # fmt: skip
    gold_relations = {g["rel"].replace(" ", "_") for g in gold}
    gold_keys = {squash(g["sub"]) + squash(g["rel"]) + squash(g["obj"]) for g in gold}
    kept = {
        squash(t.subject) + squash(t.predicate) + squash(t.object)
        for t in predicted
        if t.predicate.replace(" ", "_") in gold_relations
    }
    p = r = f1 = 0.0
    if kept:
        hits = len(gold_keys & kept)
        p, r = hits / len(kept), hits / len(gold_keys)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
    labels = {rel["label"].replace(" ", "_") for rel in ontology["relations"]}
    context = squash(sentence + " ".join(c["label"] for c in ontology["concepts"]))
    n = len(predicted)
    return {
        "precision": p,
        "recall": r,
        "f1": f1,
        "onto_conf": sum(t.predicate.replace(" ", "_") in labels for t in predicted) / n
        if n
        else 1,
        "sub_halluc": sum(squash(t.subject) not in context for t in predicted) / n if n else 0,
        "obj_halluc": sum(squash(t.object) not in context for t in predicted) / n if n else 0,
        "triples": n,
    }


def evaluate(path: Path, ontology_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    ontology = json.loads(ontology_file.read_text(encoding="utf-8"))
    schema = to_schema(ontology, types=not args.no_types)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = rows[: args.limit] if args.limit else rows
    items = [Item(r["id"], r["sent"], schema) for r in rows]
    run = sample_items(items, args, path.name)
    drawn = run.drawn
    scores: dict[str, Any] = {}
    for variant in VARIANTS:
        per = [
            score_sentence(r["triples"], d.variants[variant], r["sent"], ontology)
            for r, d in zip(rows, drawn, strict=True)
        ]
        scores[variant] = {k: round(fmean(s[k] for s in per), 4) for k in per[0]} if per else {}
    predictions = (
        {
            "id": r["id"],
            "sent": r["sent"],
            "gold": r["triples"],
            **{v: triples_json(d.variants[v]) for v in VARIANTS},
        }
        for r, d in zip(rows, drawn, strict=True)
    )
    tag = "notypes" if args.no_types else ""
    return save_run(run, path, args.out, scores, predictions, tag=tag)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--ontology", type=Path, help="the ontology JSON (one file only)")
    parser.add_argument(
        "--no-types", action="store_true", help="check relation names only, not domain/range"
    )
    add_model_args(parser)
    args = parser.parse_args(argv)
    if args.ontology and len(args.files) > 1:
        parser.error("--ontology applies to one file; pass one file")
    results = []
    for path in args.files:
        result = evaluate(path, args.ontology or ontology_path(path), args)
        results.append(result)
        print(f"{path.name}  model={result['model']}  n={result['samples']}")
        print_table(result["scores"])
        print_usage(result)
    if len(results) > 1:
        sentences = sum(r["usage"]["items"] for r in results)
        print(f"all {len(results)} files, {sentences} sentences (each sentence weighs the same)")
        print_table(overall(results))


def overall(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per-file means combined into the mean over every sentence evaluated."""
    total = sum(r["usage"]["items"] for r in results)
    return {
        v: {
            k: round(sum(r["scores"][v][k] * r["usage"]["items"] for r in results) / total, 4)
            for k in results[0]["scores"][v]
        }
        for v in VARIANTS
    }


def print_table(scores: dict[str, dict[str, float]]) -> None:
    print(f"{'variant':10} {'P':>6} {'R':>6} {'F1':>6} {'OC':>6} {'SH':>6} {'OH':>6} triples")
    for variant, s in scores.items():
        print(
            f"{variant:10} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} "
            f"{s['onto_conf']:6.3f} {s['sub_halluc']:6.3f} {s['obj_halluc']:6.3f} "
            f"{s['triples']:.2f}"
        )


if __name__ == "__main__":
    main()
