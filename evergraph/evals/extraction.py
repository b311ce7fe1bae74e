"""Shared machinery of the extraction benchmarks (`benchmarks/eval_text2kg.py`, `eval_scierc.py`).

Each item is sampled ONCE (n samples in one structured call); the variants compared are then
computed from the same samples by code, so the comparison costs no extra model time and is not
blurred by sampling noise between runs:

- `raw`: the first valid sample as the model wrote it (no normalisation, no checks);
- `single`: the first valid sample through every check, agreement out of 1: a one-shot
  extractor with Evergraph's grounding and schema rules;
- `union`: all n samples through the checks, any single vote kept (no confidence filter);
- `agreement`: all n samples with the configured minimum agreement (the product's setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.agents.extract_rules import ChunkOut, Rules, judge
from evergraph.config import LLMSettings, SamplingMode, StructuredMode, load_settings
from evergraph.errors import OutputValidationError
from evergraph.graph.schema import GraphSchema
from evergraph.llm.base import Samples, Usage
from evergraph.llm.cache import ResponseCache
from evergraph.llm.openai_compat import OpenAICompatLLM

VARIANTS = ("raw", "single", "union", "agreement")


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    schema: GraphSchema


@dataclass(frozen=True)
class Triple:
    subject: str
    predicate: str
    object: str
    quote: str = ""
    agreement: float = 1.0


@dataclass
class Drawn:
    item: Item
    samples: Samples[ChunkOut] | None  # None: no valid sample after retries
    seconds: float
    variants: dict[str, list[Triple]] = field(default_factory=dict)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-url", help="OpenAI-compatible /v1 root (default: settings)")
    parser.add_argument("--model", help="served model name (default: settings)")
    parser.add_argument(
        "--engine",
        choices=("vllm", "llamacpp"),
        help="sets the structured-output and sampling modes for that server",
    )
    parser.add_argument("--samples", type=int, default=5, help="n per item (default 5)")
    parser.add_argument("--limit", type=int, help="only the first K items of each file")
    parser.add_argument("--max-tokens", type=int, default=512, help="per sample (default 512)")
    parser.add_argument("--concurrency", type=int, default=2, help="items in flight")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))


def llm_settings(args: argparse.Namespace) -> tuple[LLMSettings, Path]:
    """The configured LLM settings with the command line's overrides, and the cache dir."""
    settings = load_settings()
    update: dict[str, Any] = {"max_tokens": args.max_tokens, "cache": not args.no_cache}
    if args.model_url:
        update["base_url"] = args.model_url.rstrip("/")
    if args.model:
        update["model"] = args.model
    if args.engine == "llamacpp":
        update |= {
            "structured_mode": StructuredMode.JSON_OBJECT,
            "sampling_mode": SamplingMode.REPEAT,
        }
    elif args.engine == "vllm":
        update |= {
            "structured_mode": StructuredMode.JSON_SCHEMA,
            "sampling_mode": SamplingMode.NATIVE,
        }
    return settings.llm.model_copy(update=update), settings.cache_path


def _raw(sample: ChunkOut) -> list[Triple]:
    return [Triple(r.subject, r.predicate, r.object, r.quote) for r in sample.relations]


def variants(drawn: Drawn, rules: Rules) -> dict[str, list[Triple]]:
    """The four variants of the module docstring, from one item's samples."""
    if drawn.samples is None or not drawn.samples.values:
        return {v: [] for v in VARIANTS}
    values, requested, item = drawn.samples.values, drawn.samples.requested, drawn.item

    def judged(samples: Sequence[ChunkOut], requested: int, r: Rules) -> list[Triple]:
        j = judge(samples, requested, text=item.text, chunk_id=item.id, schema=item.schema, rules=r)
        return [
            Triple(
                f.subject.name,
                f.predicate,
                f.object.name if f.object else str(f.object_value),
                f.quote,
                f.agreement,
            )
            for f in j.facts
        ]

    return {
        "raw": _raw(values[0]),
        "single": judged(values[:1], 1, rules),
        "union": judged(values, requested, replace(rules, min_agreement=0.0)),
        "agreement": judged(values, requested, rules),
    }


async def draw_all(
    llm: OpenAICompatLLM,
    items: Sequence[Item],
    options: ExtractOptions,
    *,
    concurrency: int,
    progress: Callable[[int, int], None],
) -> list[Drawn]:
    """Sample every item once (one structured call each), `concurrency` items at a time."""
    slots = asyncio.Semaphore(concurrency)
    done = 0
    # One extractor per schema (a file's items share one): its prompt and its enum response
    # model are built once, not per item.
    extractors = {id(i.schema): Extractor(llm, i.schema, options) for i in items}

    async def one(item: Item) -> Drawn:
        nonlocal done
        async with slots:
            start = time.monotonic()
            samples: Samples[ChunkOut] | None
            try:
                samples = await extractors[id(item.schema)].sample(item.text)
            except OutputValidationError:  # an item the model cannot answer counts as empty
                samples = None
            drawn = Drawn(item, samples, time.monotonic() - start)
            drawn.variants = variants(drawn, options.rules)
            done += 1
            progress(done, len(items))
            return drawn

    return await asyncio.gather(*(one(i) for i in items))


def usage_of(drawn: Iterable[Drawn]) -> dict[str, float]:
    usage = sum((d.samples.usage for d in drawn if d.samples), Usage())
    items = list(drawn)
    count = max(len(items), 1)
    return {
        "items": len(items),
        "failed_items": sum(d.samples is None for d in items),
        "requests": usage.requests,
        "cached_requests": usage.cached_requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "requests_per_item": usage.requests / count,
        "tokens_per_item": (usage.prompt_tokens + usage.completion_tokens) / count,
        "seconds_per_item": sum(d.seconds for d in items) / count,
        "dropped_cut_off": sum(d.samples.dropped_length for d in items if d.samples),
        "dropped_invalid": sum(d.samples.dropped_invalid for d in items if d.samples),
    }


def triples_json(triples: Sequence[Triple]) -> list[dict[str, Any]]:
    return [t.__dict__ for t in triples]


@dataclass(frozen=True)
class Run:
    """One file's items, sampled with the command line's model and options."""

    drawn: list[Drawn]
    settings: LLMSettings
    rules: Rules
    samples: int


def sample_items(items: Sequence[Item], args: argparse.Namespace, name: str) -> Run:
    """Sample every item once, with progress on stderr."""
    settings, cache_dir = llm_settings(args)
    extract = load_settings().extract
    rules = Rules(extract.min_agreement, extract.confidence_cap, extract.quote_match)
    options = ExtractOptions(samples=args.samples, rules=rules, max_tokens=args.max_tokens)

    def progress(done: int, total: int) -> None:
        print(f"\r{name}: {done}/{total}", end="", file=sys.stderr, flush=True)

    async def go() -> list[Drawn]:
        cache = ResponseCache(cache_dir / "llm.db") if settings.cache else None
        llm = OpenAICompatLLM(settings, cache=cache)
        try:
            return await draw_all(
                llm, items, options, concurrency=args.concurrency, progress=progress
            )
        finally:
            await llm.aclose()

    drawn = asyncio.run(go())
    print(file=sys.stderr)
    return Run(drawn, settings, rules, args.samples)


def save_run(
    run: Run,
    path: Path,
    out: Path,
    scores: dict[str, Any],
    predictions: Iterable[dict[str, Any]],
    *,
    tag: str = "",
) -> dict[str, Any]:
    """Write `<stem>.<model>[.tag].predictions.jsonl` and `.scores.json`; return the scores."""
    stem = out / ".".join(x for x in (path.stem, run.settings.model, tag) if x)
    out.mkdir(parents=True, exist_ok=True)
    with Path(f"{stem}.predictions.jsonl").open("w", encoding="utf-8") as f:
        for row in predictions:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result = {
        "file": str(path),
        "model": run.settings.model,
        "base_url": run.settings.base_url,
        "samples": run.samples,
        "min_agreement": run.rules.min_agreement,
        "scores": scores,
        "usage": usage_of(run.drawn),
        "command": " ".join(sys.argv),
    }
    Path(f"{stem}.scores.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def print_usage(result: dict[str, Any]) -> None:
    u = result["usage"]
    print(
        f"per item: {u['requests_per_item']:.1f} requests, {u['tokens_per_item']:.0f} tokens, "
        f"{u['seconds_per_item']:.1f} s; dropped samples: {u['dropped_cut_off']} cut off, "
        f"{u['dropped_invalid']} invalid; failed items: {u['failed_items']}"
    )
