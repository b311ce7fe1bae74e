"""Cost of one adaptation step: Evergraph's delta curator vs a full-rewrite baseline.

    .venv/bin/python benchmarks/bench_adapt_cost.py --scripted --bullets 10 25 50
    .venv/bin/python benchmarks/bench_adapt_cost.py --bullets 10 \\
        --model-url http://127.0.0.1:8103/v1 --model qwen2.5-coder-1.5b --engine llamacpp

Both methods learn from the same task, answer and gold, on the same playbook:
- evergraph: reflect (1 call) + curate (1 call) -> typed delta ops merged by code; the
  curator sees the playbook rendered within the token budget, and writes only its ops;
- rewrite: a Dynamic-Cheatsheet-style curator (the prompt below, written for this
  comparison) gets the whole playbook and must return the whole updated one (1 call).

The playbook holds N bullets made of the formula training file's distinct formulas (the
first item of FILE is the task), or a stored one (--store DB --name NAME). With --scripted
the model is `ScriptedLLM` (canned outputs: one ADD op; the rewrite is the old text plus one
line) and tokens are estimated at 4 characters a token: it shows how prompt and output sizes
grow with the playbook. With a real model the server's usage counts, and how many of the old
bullets the rewrite dropped is reported (ACE's "context collapse").

Writes `adapt_cost.<model|scripted>.jsonl` (one line per method and size: what it produced)
and `adapt_cost.<model|scripted>.scores.json` to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS, ReflectOut
from evergraph.agents.ace_types import AceSettings, Feedback
from evergraph.config import load_settings
from evergraph.embed.base import Embedder
from evergraph.errors import OutputValidationError
from evergraph.evals.ace_tasks import TaskKind, judge, read_tasks
from evergraph.evals.extraction import llm_settings
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM, Message, Samples
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.llm.testing import ScriptedLLM
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.render import estimate_tokens, render
from evergraph.runtime import build_embedder

ACE = Path(__file__).resolve().parents[2] / "shared/data/ace_finance"
FORMULA = re.compile(r"Formula: (.*?), Explanation: (.*?)\. Question")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CheatsheetOut(BaseModel):
    cheatsheet: str = Field(description="the whole updated cheatsheet, one entry a line")


REWRITE_SYSTEM = """\
You maintain a cheatsheet of short, reusable rules for a kind of task. Given the current \
cheatsheet, a task, the answer given and the correct answer, rewrite the ENTIRE cheatsheet: \
keep every useful entry, add what this task teaches, fix or drop what it shows to be wrong. \
Output the complete updated cheatsheet, one entry a line: whatever you leave out is lost."""


def rewrite_messages(cheatsheet: str, task: str, answer: str, gold: str) -> list[Message]:
    user = (
        f"Current cheatsheet:\n{cheatsheet or '(empty)'}\n\nTask:\n{task}\n\n"
        f"Answer given: {answer}\nCorrect answer: {gold}"
    )
    return [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": user}]


def formula_playbook(train: Path, size: int) -> Playbook:
    """`size` bullets: the distinct formulas of the training file, with their explanations."""
    rules: dict[str, str] = {}
    for item in read_tasks(train):
        m = FORMULA.search(item.task)
        if m:
            rules.setdefault(m.group(1), f"{m.group(1)}, where {m.group(2)}.")
    if size > len(rules):
        raise SystemExit(f"{train} has {len(rules)} distinct formulas; ask for at most that")
    empty = Playbook(name="cost", sections=list(DEFAULT_SECTIONS))
    ops = [AddOp(section="formulas", content=c) for c in list(rules.values())[:size]]
    return apply_deltas(empty, ops, now=NOW).playbook


def scripted(playbook: Playbook) -> ScriptedLLM:
    reflection = ReflectOut(
        error="used the wrong formula",
        root_cause="did not check which formula the task names",
        key_insight="use the formula the task names, with its own variables",
        bullet_tags=[],
    )
    op = {"op": "ADD", "section": "checks", "content": reflection.key_insight, "reason": "r"}
    whole = render(playbook, budget=10**9).text
    return ScriptedLLM(
        [
            reflection.model_dump_json(),
            json.dumps({"operations": [op]}),
            CheatsheetOut(cheatsheet=f"{whole}\n- {reflection.key_insight}").model_dump_json(),
        ]
    )


async def measure(
    llm: LLM,
    embedder: Embedder,
    playbook: Playbook,
    task: str,
    answer: str,
    gold: str,
) -> list[dict[str, Any]]:
    settings = AceSettings()
    agent = AceAgent(llm, embedder, settings=settings, judge=judge(TaskKind.formula))
    start = time.perf_counter()
    feedback = Feedback(ground_truth=gold, bullet_ids=[])  # the answer cited no bullet
    step = await agent.run(task, playbook, answer=answer, feedback=feedback)
    delta_seconds = time.perf_counter() - start
    after = step.revision.playbook if step.revision else playbook

    whole = render(playbook, budget=10**9).text
    start = time.perf_counter()
    rewrite_cap = 2 * estimate_tokens(whole) + 256  # room for the whole sheet and more
    failure = None
    try:
        samples: Samples[CheatsheetOut] | None = await llm.structured(
            rewrite_messages(whole, task, answer, gold),
            CheatsheetOut,
            max_tokens=rewrite_cap,
            temperature=settings.temperature,
        )
    except OutputValidationError as e:  # a rewrite the model cannot write is a result
        samples, failure = None, str(e)
    rewrite_seconds = time.perf_counter() - start
    sheet = samples.values[0].cheatsheet if samples and samples.values else ""
    kept = sum(b.content in sheet for b in playbook.bullets)
    before = {"bullets_before": len(playbook.bullets), "playbook_tokens": estimate_tokens(whole)}
    return [
        {
            "method": "evergraph-delta",
            **before,
            "calls": step.usage.requests,
            "prompt_tokens": step.usage.prompt_tokens,
            "completion_tokens": step.usage.completion_tokens,
            "seconds": round(delta_seconds, 2),
            "bullets_after": len(after.bullets),
            "old_bullets_kept": sum(after.get(b.id) is not None for b in playbook.bullets),
            "output": [op.model_dump() for op in step.applied],
        },
        {
            "method": "full-rewrite",
            **before,
            "calls": samples.usage.requests if samples else None,
            "prompt_tokens": samples.usage.prompt_tokens if samples else None,
            "completion_tokens": samples.usage.completion_tokens if samples else None,
            "error": failure,
            "seconds": round(rewrite_seconds, 2),
            "bullets_after": sum(
                bool(s.strip()) and not s.startswith("#") for s in sheet.splitlines()
            ),
            "old_bullets_kept": kept,
            "output": sheet,
        },
    ]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("file", nargs="?", type=Path, default=ACE / "formula_val_subset_300.jsonl")
    p.add_argument("--train", type=Path, default=ACE / "formula_train_subset_500.jsonl")
    p.add_argument("--bullets", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--store", type=Path, help="take the playbook from this SQLite store")
    p.add_argument("--name", help="the stored playbook's name")
    p.add_argument("--answer", default="0.00", help="the answer being learned from")
    p.add_argument("--scripted", action="store_true", help="canned outputs, estimated tokens")
    p.add_argument("--model-url")
    p.add_argument("--model")
    p.add_argument("--engine", choices=("vllm", "llamacpp"))
    p.add_argument("--max-tokens", type=int, default=4096, help="client cap per call")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ace"))
    args = p.parse_args(argv)
    item = read_tasks(args.file)[0]
    if args.store:
        with SQLiteGraphStore(args.store) as store:
            stored = store.get_playbook(args.name or "")
        if stored is None:
            raise SystemExit(f"no playbook {args.name!r} in {args.store}")
        playbooks = [stored]
    else:
        playbooks = [formula_playbook(args.train, n) for n in args.bullets]
    embedder = build_embedder(load_settings())

    async def go() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for pb in playbooks:
            if args.scripted:
                llm: LLM = scripted(pb)
                rows += await measure(llm, embedder, pb, item.task, args.answer, item.gold or "")
                continue
            conf, _ = llm_settings(args)
            real = OpenAICompatLLM(conf, cache=None)
            try:
                rows += await measure(real, embedder, pb, item.task, args.answer, item.gold or "")
            finally:
                await real.aclose()
        return rows

    rows = asyncio.run(go())
    tag = "scripted" if args.scripted else llm_settings(args)[0].model
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"adapt_cost.{tag}"
    with Path(f"{stem}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    table = [{k: v for k, v in r.items() if k != "output"} for r in rows]
    Path(f"{stem}.scores.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    head = ["method", "bullets_before", "playbook_tokens", "calls", "prompt_tokens"]
    head += ["completion_tokens", "seconds", "bullets_after", "old_bullets_kept"]
    print("\t".join(head))
    for r in table:
        print("\t".join(str(r[k]) for k in head))
    print(f"wrote {stem}.jsonl and .scores.json")


if __name__ == "__main__":
    main()
