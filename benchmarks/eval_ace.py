"""ACE's finance protocol with Evergraph's playbooks: empty playbook vs offline vs online.

    .venv/bin/python benchmarks/eval_ace.py $ACE/formula_val_subset_300.jsonl \\
        --model-url http://127.0.0.1:8103/v1 --model qwen2.5-coder-1.5b --engine llamacpp \\
        --mode empty --limit 20 --no-cache --out benchmarks/results/ace

    ... --mode online    (learn after each task, scored before the update: test-time)
    ... --mode offline --train $ACE/formula_train_subset_500.jsonl --train-limit 40 \\
        --val $ACE/formula_val_subset_300.jsonl --val-limit 20 --epochs 2
    ... --mode offline --train $ACE/finer_val_batched_500_samples.jsonl --train-skip 100 ...
        (FiNER has no training file: train on later items of the validation file)
        (adapt on --train, keep the best epoch by --val, then score FILE frozen)

(ACE=../shared/data/ace_finance; with no file, its formula and FiNER validation files.)

Input: task JSONL, ACE's `{"context", "target"}` or `{"question", "context"?, "answer"}`, any
file of either form (`evergraph.evals.ace_tasks`). Scoring as ACE's finance/data_processor.py:
formula by exact numeric match, FiNER by tag accuracy (micro over tags); others by exact match.

Each FILE gets its own playbook in a SQLite store next to the results
(`<stem>.<model>.<mode>.db`, inspect it with `evergraph --config ... playbook show`), and
`<stem>.<model>.<mode>.predictions.jsonl` (one line per item and pass: id, answer, gold,
correct, bullets cited, tokens, seconds, playbook version) plus `.scores.json` (accuracy,
tokens, calls and seconds per task, playbook size after each pass — per epoch offline).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from evergraph.agents.ace_adapt import Adapter, Pass
from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS
from evergraph.agents.ace_types import AceSettings
from evergraph.config import load_settings
from evergraph.embed.base import Embedder
from evergraph.evals.ace_results import print_passes, write_results
from evergraph.evals.ace_tasks import TaskItem, detect_kind, judge, read_tasks
from evergraph.evals.extraction import llm_settings
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.cache import ResponseCache
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.playbooks.models import Playbook
from evergraph.runtime import build_embedder

ACE = Path(__file__).resolve().parents[2] / "shared/data/ace_finance"
DEFAULT_FILES = [ACE / "formula_val_subset_300.jsonl", ACE / "finer_val_batched_500_samples.jsonl"]

out = Console(soft_wrap=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES, help="task JSONL files")
    p.add_argument("--mode", choices=("empty", "offline", "online"), default="empty")
    p.add_argument("--limit", type=int, help="only the first K items of each FILE")
    p.add_argument("--train", type=Path, help="offline: the training tasks")
    p.add_argument("--train-limit", type=int)
    p.add_argument(
        "--train-skip",
        type=int,
        default=0,
        help="offline: skip the first K training tasks (train on a file's later items, apart "
        "from the ones scored)",
    )
    p.add_argument("--val", type=Path, help="offline: validation tasks (keeps the best epoch)")
    p.add_argument("--val-limit", type=int)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--no-ground-truth", action="store_true", help="learn without the gold")
    p.add_argument("--budget", type=int, default=AceSettings().budget, help="playbook tokens")
    p.add_argument("--reflect-rounds", type=int, default=1)
    p.add_argument(
        "--curator-removes",
        action="store_true",
        help="let the curator REMOVE bullets (default: only the counters prune)",
    )
    for role in ("generate", "reflect", "curate"):
        default = getattr(AceSettings(), f"{role}_tokens")
        p.add_argument(f"--{role}-tokens", type=int, default=default, help="max_tokens a call")
    p.add_argument("--model-url", help="OpenAI-compatible /v1 root (default: settings)")
    p.add_argument("--model", help="served model name (default: settings)")
    p.add_argument("--engine", choices=("vllm", "llamacpp"), help="the server's modes")
    p.add_argument("--max-tokens", type=int, default=512, help="client default per call")
    p.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ace"))
    args = p.parse_args(argv)
    if args.mode == "offline" and args.train is None:
        p.error("--mode offline needs --train FILE")
    return args


async def run_file(
    path: Path,
    args: argparse.Namespace,
    llm: OpenAICompatLLM,
    embedder: Embedder,
    store: SQLiteGraphStore,
) -> list[Pass]:
    items = read_tasks(path)[: args.limit]
    kind = detect_kind(items)
    settings = AceSettings(
        budget=args.budget,
        reflect_rounds=args.reflect_rounds,
        curator_removes=args.curator_removes,
        generate_tokens=args.generate_tokens,
        reflect_tokens=args.reflect_tokens,
        curate_tokens=args.curate_tokens,
    )
    agent = AceAgent(llm, embedder, settings=settings, judge=judge(kind))

    def progress(label: str, done: int, total: int) -> None:
        out.print(f"{time.strftime('%H:%M:%S')} {path.stem} {label}: {done}/{total}")

    adapter = Adapter(agent, kind, store, ground_truth=not args.no_ground_truth, progress=progress)
    playbook = Playbook(name=path.stem, sections=list(DEFAULT_SECTIONS))
    if args.mode == "empty":
        return [await adapter.evaluate(playbook, items, "empty")]
    if args.mode == "online":
        return [(await adapter.online(playbook, items))[1]]
    train = _tasks(args.train, args.train_limit, skip=args.train_skip)
    val = _tasks(args.val, args.val_limit) if args.val else []
    done = await adapter.offline(playbook, train, val, epochs=args.epochs)
    trained = [p for e in done.epochs for p in (e.train, e.val) if p is not None]
    return [*trained, await adapter.evaluate(done.playbook, items, "test (frozen)")]


def _tasks(path: Path, limit: int | None, *, skip: int = 0) -> list[TaskItem]:
    return read_tasks(path)[skip:][:limit]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    llm_conf, cache_dir = llm_settings(args)
    model = llm_conf.model

    async def go() -> None:
        cache = ResponseCache(cache_dir / "llm.db") if llm_conf.cache else None
        llm = OpenAICompatLLM(llm_conf, cache=cache)
        embedder = build_embedder(load_settings())
        try:
            for path in args.files:
                stem = args.out / f"{path.stem}.{model}.{args.mode}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                Path(f"{stem}.db").unlink(missing_ok=True)  # a fresh playbook each run
                start = time.perf_counter()
                with SQLiteGraphStore(Path(f"{stem}.db")) as store:
                    passes = await run_file(path, args, llm, embedder, store)
                meta = {
                    "file": str(path),
                    "model": model,
                    "mode": args.mode,
                    "command": " ".join(sys.argv),
                    "seconds": round(time.perf_counter() - start, 1),
                }
                out.print()
                print_passes(passes, out, title=f"{path.name} · {model} · {args.mode}")
                write_results(stem, passes, meta)
                out.print(f"wrote {stem}.predictions.jsonl and .scores.json")
        finally:
            await llm.aclose()

    asyncio.run(go())


if __name__ == "__main__":
    main()
