"""The work behind `evergraph playbook train` and `evergraph playbook eval`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from evergraph import runtime
from evergraph.agents.ace_adapt import Adapter, Pass
from evergraph.agents.ace_graph import AceAgent
from evergraph.agents.ace_prompts import DEFAULT_SECTIONS
from evergraph.agents.ace_types import AceSettings
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.cli_progress import StepBars
from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.evals.ace_results import print_passes, write_results
from evergraph.evals.ace_tasks import TaskItem, TaskKind, detect_kind, judge, read_tasks
from evergraph.graph.store.base import GraphStore
from evergraph.playbooks.models import Playbook

R = TypeVar("R")

CHECKPOINTS = "ace-checkpoints.db"  # in HOME: a step cut short resumes from here


def run_train(
    settings: Settings,
    file: Path,
    *,
    name: str,
    offline: bool,
    val: Path | None,
    epochs: int,
    kind: TaskKind | None,
    ground_truth: bool,
    limit: int | None,
    ace: AceSettings,
    out_dir: Path | None,
    out: Console,
) -> None:
    if not offline and (val is not None or epochs != 1):
        raise UsageError("--val and --epochs are for offline mode", fix="add --mode offline")
    items = _tasks(file, limit)
    _results_folder(out_dir)
    val_items = _tasks(val, limit) if val else []
    kind = kind or detect_kind(items)

    async def work(adapter: Adapter, playbook: Playbook) -> list[Pass]:
        if not offline:
            _, result = await adapter.online(playbook, items)
            return [result]
        done = await adapter.offline(playbook, items, val_items, epochs=epochs)
        out.print(
            f"kept epoch {done.best_epoch}: version {done.playbook.version}, "
            f"{len(done.playbook.bullets)} bullets"
        )
        return [p for e in done.epochs for p in (e.train, e.val) if p is not None]

    passes = _run(
        settings,
        name,
        kind,
        ace,
        out,
        work,
        ground_truth=ground_truth,
        empty=False,
        must_exist=False,
    )
    _report(passes, out, out_dir, f"{file.stem}.{name}.{'offline' if offline else 'online'}", kind)


def run_eval(
    settings: Settings,
    file: Path,
    *,
    name: str,
    empty: bool,
    kind: TaskKind | None,
    limit: int | None,
    ace: AceSettings,
    out_dir: Path | None,
    out: Console,
) -> None:
    items = _tasks(file, limit)
    _results_folder(out_dir)
    kind = kind or detect_kind(items)

    async def work(adapter: Adapter, playbook: Playbook) -> list[Pass]:
        return [await adapter.evaluate(playbook, items, "empty" if empty else "eval")]

    passes = _run(
        settings, name, kind, ace, out, work, ground_truth=True, empty=empty, must_exist=True
    )
    _report(passes, out, out_dir, f"{file.stem}.{name}.{'empty' if empty else 'eval'}", kind)


def _tasks(path: Path, limit: int | None) -> list[TaskItem]:
    return read_tasks(path)[:limit]


def _results_folder(out_dir: Path | None) -> None:
    """Make --out before the run: a path the system refuses fails now, not after the work."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)


def _playbook(store: GraphStore, name: str, *, empty: bool, must_exist: bool) -> Playbook:
    if not name.strip():  # Playbook() would refuse it with a traceback
        raise UsageError("--name is empty", fix="name the playbook, e.g. --name finance")
    stored = None if empty else store.get_playbook(name)
    if stored is None and must_exist and not empty:
        raise UsageError(
            f"there is no playbook {name!r} in {store.location}",
            fix="train one with `evergraph playbook train`, or pass --no-playbook",
        )
    return stored or Playbook(name=name, sections=list(DEFAULT_SECTIONS))


def _run(
    settings: Settings,
    name: str,
    kind: TaskKind,
    ace: AceSettings,
    out: Console,
    work: Callable[[Adapter, Playbook], Awaitable[R]],
    *,
    ground_truth: bool,
    empty: bool,
    must_exist: bool,
) -> R:
    """Build the clients, run `work` with a progress bar, close everything however it ends."""
    store = runtime.build_store(settings)
    try:
        playbook = _playbook(store, name, empty=empty, must_exist=must_exist)
        with out.status("loading the embedder"):
            embedder = runtime.build_embedder(settings)

        async def go() -> R:
            checkpoints = settings.home / CHECKPOINTS
            async with (
                runtime.build_llm(settings) as llm,
                open_checkpointer(checkpoints) as saver,
            ):
                agent = AceAgent(llm, embedder, settings=ace, judge=judge(kind), checkpointer=saver)
                with StepBars(out) as progress:
                    adapter = Adapter(
                        agent, kind, store, ground_truth=ground_truth, progress=progress
                    )
                    return await work(adapter, playbook)

        return asyncio.run(go())
    finally:
        store.close()


def _report(
    passes: list[Pass], out: Console, out_dir: Path | None, stem: str, kind: TaskKind
) -> None:
    print_passes(passes, out)
    if out_dir is not None:
        write_results(out_dir / stem, passes, {"task": kind.value})
        out.print(f"wrote {out_dir / stem}.predictions.jsonl and .scores.json")
