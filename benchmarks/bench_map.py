"""The mapping job: papers/minute (scripted and real model), and concept-tagging P/R/F1.

    # non-LLM overhead: a scripted model answers instantly, at concurrency 1, 2 and 4
    .venv/bin/python benchmarks/bench_map.py throughput \\
        ../shared/data/arxiv_astroph_kg4s/arxiv_astroph_1000.jsonl --limit 200
    # the same with a real model server (one llama.cpp slot: expect no gain from concurrency)
    .venv/bin/python benchmarks/bench_map.py throughput PAPERS --limit 5 --concurrency 1 \\
        --model-url http://127.0.0.1:8101/v1 --engine llamacpp --samples 1
    # concept tagging against kg-for-science's 20 hand-tagged abstracts
    .venv/bin/python benchmarks/bench_map.py tagging \\
        ../shared/data/arxiv_astroph_kg4s/kg4s_human_annotations.jsonl \\
        --model-url http://127.0.0.1:8101/v1 --engine llamacpp --samples 1

**throughput** runs `MapJob` end to end (read, extract, resolve, integrate with the paper edges,
checkpoint) into a fresh store per concurrency level. Without --model-url a scripted model names
up to 10 of each abstract's longer words as concepts (so resolution and the co-occurrence
edges get realistic work) and the embedder is the hashing test double unless --real-embedder:
the figure is Evergraph's own cost per paper. Predictions: each paper's concepts.

**tagging** extracts each annotated title + abstract once (the product's extractor, the given
samples) and compares its concepts with the gold `tagged_phrases`, as the data's SOURCE.md
prescribes: (phrase, type) pairs after normalising case and whitespace, micro P/R/F1 overall
and per type, `exact` (same phrase) and `partial` (token Jaccard >= 0.5 with a gold phrase of
the type); `untyped` ignores the type (the 0.5B model often mistypes). The first three papers
are the repository's few-shot examples: scores are given on all and on the other 17 (`dev`).

Each writes `<stem>.<model>.<mode>.predictions.jsonl` and `.scores.json` to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evergraph.agents.build import constructor
from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.agents.extract_rules import ChunkOut, norm
from evergraph.embed.testing import HashingEmbedder
from evergraph.evals.extraction import add_model_args, llm_settings
from evergraph.graph.chunking import chunk_source
from evergraph.graph.ingest import Document, read_documents
from evergraph.graph.schema import GraphSchema, load_schema
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM, Message
from evergraph.llm.cache import ResponseCache
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.llm.testing import ScriptedLLM
from evergraph.mapping.concepts import concepts
from evergraph.mapping.job import MapJob, papers
from evergraph.mapping.options import MapOptions

DATA = Path(__file__).resolve().parents[2] / "shared/data/arxiv_astroph_kg4s"
SCHEMA = DATA / "kg4s_schema.json"
FEW_SHOT = 3
PARTIAL = 0.5
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{7,}")


# --- throughput ------------------------------------------------------------------------------


def scripted_answer(schema: GraphSchema) -> Any:
    types = schema.entity_types or ["Thing"]

    def answer(messages: list[Message], _: type[BaseModel], n: int) -> list[str]:
        words = list(dict.fromkeys(_WORD.findall(messages[-1]["content"])))[:10]
        entities = [{"name": w, "type": types[i % len(types)]} for i, w in enumerate(words)]
        out = ChunkOut.model_validate({"entities": entities, "relations": []})
        return [out.model_dump_json()] * n

    return answer


def llm_factory(args: argparse.Namespace, schema: GraphSchema) -> Any:
    if not args.model_url:
        answer = scripted_answer(schema)
        return lambda: nullcontext(ScriptedLLM([answer] * 100_000))
    settings, cache_dir = llm_settings(args)
    # as `evergraph map --concurrency`: the client's cap must not hold the highest level back
    settings = settings.model_copy(update={"max_concurrency": max(args.concurrency)})

    def real() -> AbstractAsyncContextManager[LLM]:
        cache = ResponseCache(cache_dir / "llm.db") if settings.cache else None
        return OpenAICompatLLM(settings, cache=cache)

    return real


def throughput(args: argparse.Namespace, path: Path, schema: GraphSchema) -> dict[str, Any]:
    documents = list(read_documents([path]))[: args.limit]
    factory = llm_factory(args, schema)
    embedder: Any = HashingEmbedder()
    if args.real_embedder:
        from evergraph.config import load_settings
        from evergraph.runtime import build_embedder

        embedder = build_embedder(load_settings())
    options = ExtractOptions(samples=args.samples, max_tokens=args.max_tokens)
    scores: dict[str, Any] = {}
    predictions: list[dict[str, Any]] = []
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_map_"))
    for level in args.concurrency:
        out = work / f"c{level}"
        if out.exists():
            shutil.rmtree(out)
        store = SQLiteGraphStore(out / "graph.db")
        job = MapJob(
            store, factory, schema, options, constructor(store, embedder, schema), out,
            MapOptions(concurrency=level, attempts=2),
        )  # fmt: skip
        started = time.perf_counter()
        summary = asyncio.run(job.run(documents))
        seconds = time.perf_counter() - started
        t = summary.build.totals
        scores[f"concurrency_{level}"] = {
            "papers": t.documents,
            "failed": len(summary.failed),
            "seconds": round(seconds, 2),
            "papers_per_minute": round(60 * t.documents / seconds, 1),
            "facts": t.facts,
            "entities": t.entities,
            "requests": t.requests,
        }
        print(f"concurrency {level}: {scores[f'concurrency_{level}']} in {out}", file=sys.stderr)
        if level == args.concurrency[0]:
            predictions = list(_mapped(store, documents))
        store.close()
    base = scores[f"concurrency_{args.concurrency[0]}"]["papers_per_minute"]
    for s in scores.values():
        s["ratio_to_first"] = round(s["papers_per_minute"] / base, 2) if base else None
    return {"scores": scores, "predictions": predictions}


def _mapped(store: SQLiteGraphStore, documents: Sequence[Document]) -> Iterable[dict[str, Any]]:
    from evergraph.mapping.occurrences import read_occurrences

    occ = read_occurrences(store)
    for d in papers(documents):
        found = sorted(occ.by_paper.get(d.key, ()))
        yield {
            "id": d.key,
            "concepts": [[occ.concepts[c].name, occ.concepts[c].type] for c in found],
            "evidence": "appears_in facts of the mapped store",
        }


# --- tagging ---------------------------------------------------------------------------------

Pair = tuple[str, str]  # (normalised phrase, type)


def gold_pairs(record: dict[str, Any]) -> set[Pair]:
    return {(norm(p), t) for t, phrases in record["tagged_phrases"].items() for p in phrases}


def _tokens(phrase: str) -> set[str]:
    return set(re.findall(r"\w+", phrase))


def _overlaps(a: str, b: str) -> bool:
    x, y = _tokens(a), _tokens(b)
    return bool(x and y) and len(x & y) / len(x | y) >= PARTIAL


def prf(
    predicted: Sequence[set[Pair]], gold: Sequence[set[Pair]], *, partial: bool, typed: bool
) -> dict[str, float]:
    """Micro P/R/F1 over items; a match needs the same type when `typed`."""
    tp_p = tp_g = n_p = n_g = 0
    for pred, true in zip(predicted, gold, strict=True):
        if not typed:
            pred, true = {(p, "") for p, _ in pred}, {(p, "") for p, _ in true}

        def hit(x: Pair, pool: set[Pair]) -> bool:
            same = (g for g in pool if g[1] == x[1])
            return x in pool or (partial and any(_overlaps(x[0], g[0]) for g in same))

        tp_p += sum(hit(x, true) for x in pred)  # predictions that match some gold pair
        tp_g += sum(hit(x, pred) for x in true)  # gold pairs that some prediction matches
        n_p, n_g = n_p + len(pred), n_g + len(true)
    precision = tp_p / n_p if n_p else 0.0
    recall = tp_g / n_g if n_g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "predicted": n_p, "gold": n_g}  # fmt: skip


def tagging(args: argparse.Namespace, path: Path, schema: GraphSchema) -> dict[str, Any]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = records[: args.limit]
    documents = [
        Document(str(i), r["title"], r["abstract"], None, "", {}, f"{path}:{i + 1}")
        for i, r in enumerate(records)
    ]
    factory = llm_factory(args, schema)
    options = ExtractOptions(samples=args.samples, max_tokens=args.max_tokens)

    async def extract_all() -> list[tuple[list[Pair], dict[str, int]]]:
        async with factory() as llm:
            extractor = Extractor(llm, schema, options)
            slots = asyncio.Semaphore(args.concurrency[0])

            async def one(d: Document) -> tuple[list[Pair], dict[str, int]]:
                source = papers([d])[0].to_source()
                async with slots:
                    found = await extractor.document(source.id, chunk_source(source))
                print(".", end="", file=sys.stderr, flush=True)
                return [(m.name, m.type) for m in concepts(found)], found.rejected

            return list(await asyncio.gather(*(one(d) for d in documents)))

    started = time.perf_counter()
    found, rejected = zip(*asyncio.run(extract_all()), strict=True)
    seconds = time.perf_counter() - started
    predicted = [{(norm(n), t) for n, t in pairs} for pairs in found]
    gold = [gold_pairs(r) for r in records]
    scores: dict[str, Any] = {"seconds": round(seconds, 1), "papers": len(records)}
    for subset, lo in (("all", 0), ("dev", FEW_SHOT)):
        p, g = predicted[lo:], gold[lo:]
        scores[subset] = {
            f"{match}_{kind}": prf(p, g, partial=match == "partial", typed=kind == "typed")
            for match in ("exact", "partial")
            for kind in ("typed", "untyped")
        }
        scores[subset]["per_type_exact"] = {
            t: prf(
                [{x for x in s if x[1] == t} for s in p],
                [{x for x in s if x[1] == t} for s in g],
                partial=False,
                typed=True,
            )
            for t in schema.entity_types
        }
    rows = [
        {"id": i, "title": r["title"], "concepts": pairs,
         "evidence": "names located in the title and abstract by the extractor",
         "rejected": rejected[i], "gold": sorted(gold[i])}
        for i, (r, pairs) in enumerate(zip(records, found, strict=True))
    ]  # fmt: skip
    return {"scores": scores, "predictions": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], conflict_handler="resolve"
    )
    parser.add_argument("mode", choices=("throughput", "tagging"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    parser.add_argument("--real-embedder", action="store_true", help="throughput: MiniLM")
    parser.add_argument(
        "--work", type=Path, help="throughput: keep the mapped stores here (default: a temp dir)"
    )
    add_model_args(parser)
    parser.set_defaults(samples=1, max_tokens=400)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 2, 4], help="levels (default 1 2 4)"
    )
    args = parser.parse_args()
    schema = load_schema(args.schema)
    run = (throughput if args.mode == "throughput" else tagging)(args, args.file, schema)
    model = "scripted" if not args.model_url else (args.model or llm_settings(args)[0].model)
    stem = args.out / f"{args.file.stem}.{model}.{args.mode}"
    args.out.mkdir(parents=True, exist_ok=True)
    with Path(f"{stem}.predictions.jsonl").open("w", encoding="utf-8") as f:
        for row in run["predictions"]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result = {"file": str(args.file), "model": model, "samples": args.samples,
              "scores": run["scores"], "command": " ".join(sys.argv)}  # fmt: skip
    Path(f"{stem}.scores.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(run["scores"], indent=2))
    print(f"wrote {stem}.predictions.jsonl and .scores.json", file=sys.stderr)


if __name__ == "__main__":
    main()
