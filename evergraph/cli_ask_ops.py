"""What the evidence-search commands do: `ask` and `eval multihop`.

`cli_ask.py` declares the commands; the work and the rendering live here. A refusal is a
result like an answer (exit code 0); every user mistake is a `UsageError` (one message, exit 2).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evergraph.agents.evidence_loop import Answer, LoopSettings, Refusal, ask
from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.retrieval.ledger import LedgerEntry

Result = Answer | Refusal


def ask_question(
    settings: Settings, question: str, *, loop: LoopSettings, as_of: datetime | None
) -> tuple[Result, dict[str, str]]:
    """Run the EvidenceLoop on the configured store; the result and the titles of the sources
    its ledger quotes (read while the store is open)."""
    from evergraph.runtime import build_embedder, build_llm, build_store

    question = " ".join(question.split())
    if not question:
        raise UsageError("the question is empty", fix='ask something, e.g. evergraph ask "Who…?"')
    store = build_store(settings)
    try:
        if store.stats().chunks == 0:
            raise UsageError(
                f"the store {store.location} holds no documents to search",
                fix="add some first with `evergraph ingest FILE`, or point EVERGRAPH_STORE at "
                "a store that has them",
            )
        embedder = build_embedder(settings)

        async def go() -> Result:
            async with build_llm(settings) as llm:
                return await ask(
                    question, store=store, embedder=embedder, llm=llm, settings=loop, as_of=as_of
                )

        result = asyncio.run(go())
        return result, _titles(store, result.ledger.entries)
    finally:
        store.close()


def _titles(store: GraphStore, entries: Sequence[LedgerEntry]) -> dict[str, str]:
    titles = {}
    for source_id in {e.source_id for e in entries}:
        source = store.get_source(source_id)
        titles[source_id] = (source.title or source.uri or source.key) if source else ""
    return titles


def print_result(
    result: Result, titles: Mapping[str, str], out: Console, *, trace: bool = False
) -> None:
    """The answer and its numbered citations, or the refusal and the hops that lack evidence;
    with `trace`, every step of the loop first."""
    if trace:
        for event in result.trace:
            data = json.dumps(event.data, ensure_ascii=False, default=str) if event.data else ""
            out.print(
                f"[dim]round {event.round}[/] [bold]{event.node:8}[/] {escape(event.message)}"
                + (f"  [dim]{escape(data)}[/]" if data else "")
            )
        out.print()
    if isinstance(result, Answer):
        out.print(f"[bold]{escape(result.text)}[/]")
        for n, entry_id in enumerate(result.citations, start=1):
            entry = result.ledger.get(entry_id)
            if entry is not None:
                title = titles.get(entry.source_id) or entry.source_id
                out.print(f"  [{n}] {escape(title)} ({entry.source_id[:12]})")
                out.print(f'      "{escape(entry.quote)}"')
    else:
        out.print(f"[yellow]refused[/]: {escape(result.reason)}")
        for hop in result.missing_hops:
            out.print(f"  hop {hop.index} lacks evidence: {escape(hop.query or hop.question)}")
        found = [h for h in result.hops if h.answer]
        for hop in found:
            out.print(f"  hop {hop.index} found: {escape(hop.answer or '')}")
    u = result.usage
    out.print(
        f"[dim]{u.requests} LLM request(s), {u.prompt_tokens + u.completion_tokens} tokens, "
        f"{len(result.ledger.entries)} ledger entries[/]"
    )


def result_json(result: Result) -> str:
    """The typed result as JSON, with `kind` saying which type it is."""
    kind = "answer" if isinstance(result, Answer) else "refusal"
    return json.dumps({"kind": kind, **result.model_dump(mode="json")}, indent=2)


def eval_multihop(
    settings: Settings,
    path: Path,
    *,
    contrast: Path | None,
    limit: int | None,
    use_llm: bool,
    k_values: Sequence[int],
    modes: Sequence[str],
    loop: LoopSettings,
    store_dir: Path | None,
    out_dir: Path,
    graph: bool = False,
    samples: int | None = None,
    out: Console | None = None,
) -> dict[str, Any]:
    """Run the multi-hop harness with the configured embedder (and LLM), with a progress bar
    for the indexing of each corpus; with `graph`, the LLM first builds a graph over the
    corpus (`samples` per passage), with a bar of its own. Bars go to `out` (default: stderr)."""
    from evergraph.cli_graph_ops import build_bar, extract_options
    from evergraph.cli_progress import StepBars
    from evergraph.evals.multihop import run_multihop_eval
    from evergraph.evals.multihop_graph import GraphBuild
    from evergraph.runtime import build_embedder, build_llm

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for client in ("httpx", "httpx2"):  # openai's client logs one line per request otherwise
        logging.getLogger(client).setLevel(logging.WARNING)
    out_dir.mkdir(parents=True, exist_ok=True)  # a bad --out-dir fails now, not after the run
    options = extract_options(settings, samples) if graph else None
    llm = build_llm(settings) if use_llm or graph else None
    console = out or Console(stderr=True)
    with ExitStack() as stack:
        build = None
        if options is not None and llm is not None:
            bar = stack.enter_context(build_bar(console))
            build = GraphBuild(llm, options, settings.llm.max_concurrency, bar)
        indexing = stack.enter_context(StepBars(console))
        return run_multihop_eval(
            path,
            store_dir=store_dir or settings.home / "eval",
            embedder=build_embedder(settings),
            llm=llm if use_llm else None,
            k_values=k_values,
            limit=limit,
            out_dir=out_dir,
            modes=modes,
            contrast=contrast,
            loop=loop,
            graph=build,
            concurrency=settings.llm.max_concurrency,
            progress=indexing,
        )


def print_scores(scores: Mapping[str, Any], out: Console) -> None:
    """Recall per retriever, then the loop's and refusal metrics when the LLM ran."""
    table = Table(title=f"retrieval on {scores['file']} ({scores['items']} items)")
    table.add_column("retriever")
    recall = scores["retrieval"]
    columns = sorted({k for r in recall.values() for k in r if k.startswith("recall@")})
    for column in columns:
        table.add_column(column, justify="right")
    for mode, row in recall.items():
        cells = [_cell(row.get(c)) for c in columns]
        table.add_row(mode, *cells)
    out.print(table)
    for mode, row in recall.items():
        if "note" in row:
            out.print(f"[dim]{mode}: {escape(row['note'])}[/]")
    for section in ("loop", "refusal"):
        if section in scores:
            metrics = Table(title=section, show_header=False)
            for name, value in scores[section].items():
                metrics.add_row(name, _cell(value))
            out.print(metrics)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
