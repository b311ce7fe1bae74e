"""The work behind `evergraph playbook ...`: reading, reconstructing and printing playbooks.

Imported when a playbook command runs, so that `evergraph --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.playbooks.deltas import AddOp, MergeOp, RemoveOp, TagOp, UpdateOp
from evergraph.playbooks.history import HistoryEntry, PlaybookDiff, Revision, diff, revert
from evergraph.playbooks.models import Bullet, Playbook
from evergraph.playbooks.render import RenderedPlaybook, render
from evergraph.playbooks.transfer import (
    PlaybookExport,
    export_playbook,
    import_playbook,
    require_playbook,
)

UNLIMITED = 10**9  # a budget no playbook reaches: render everything


@contextmanager
def opened(settings: Settings) -> Iterator[GraphStore]:
    from evergraph.runtime import build_store

    store = build_store(settings)
    try:
        yield store
    finally:
        store.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- list and show -----------------------------------------------------------------------------


def list_playbooks(store: GraphStore, out: Console) -> None:
    names = store.list_playbooks()
    if not names:
        out.print(f"no playbook in {store.location} yet")
        return
    table = Table(title=store.location)
    for column in ("name", "version", "bullets", "sections"):
        table.add_column(column)
    for name in names:
        pb = require_playbook(store, name)
        table.add_row(
            escape(name), str(pb.version), str(len(pb.bullets)), escape(", ".join(pb.sections))
        )
    out.print(table)


def rendered(
    settings: Settings, store: GraphStore, name: str, *, budget: int | None, task: str | None
) -> tuple[Playbook, RenderedPlaybook]:
    """With a task, bullets are ranked by similarity to it when they exceed the budget."""
    pb = require_playbook(store, name)
    embedder = None
    if task is not None:
        from evergraph.runtime import build_embedder

        embedder = build_embedder(settings)
    limit = UNLIMITED if budget is None else budget
    return pb, render(pb, budget=limit, task=task, embedder=embedder)


def _bullet_json(b: Bullet) -> dict[str, object]:
    return b.model_dump(mode="json", exclude={"embedding"}) | {"embedded": b.embedding is not None}


def show_json(pb: Playbook, view: RenderedPlaybook) -> str:
    chosen = set(view.bullet_ids)
    return json.dumps(
        {
            "name": pb.name,
            "version": pb.version,
            "sections": pb.sections,
            "rendered": view.model_dump(),
            "bullets": [_bullet_json(b) for b in pb.bullets if b.id in chosen],
        },
        indent=2,
    )


def print_show(pb: Playbook, view: RenderedPlaybook, out: Console) -> None:
    out.print(escape(view.text) if view.text else "[dim](no bullets)[/]")
    table = Table(title=escape(f"{pb.name} v{pb.version}"))
    for column in ("id", "section", "helpful", "harmful", "updated", "reflection", "embedded"):
        table.add_column(column)
    by_id = {b.id: b for b in pb.bullets}
    for bid in view.bullet_ids:
        b = by_id[bid]
        table.add_row(
            b.id,
            escape(b.section),
            str(b.helpful),
            str(b.harmful),
            _time(b.updated_at),
            escape(b.reflection_id or ""),
            "yes" if b.embedding is not None else "no",
        )
    out.print(table)
    left_out = f", {view.omitted} left out to fit the budget" if view.omitted else ""
    out.print(f"[dim]{len(view.bullet_ids)} bullets, {view.tokens} tokens{left_out}[/]")


# -- history and diff --------------------------------------------------------------------------


def describe(entry: HistoryEntry) -> str:
    """One line for an entry: what the op did, by id."""
    match entry.op:
        case AddOp():
            ids = ", ".join(b.id for b in entry.after)
            text = f"ADD {ids} [{entry.op.section}] {entry.op.content}"
        case UpdateOp():
            text = f"UPDATE {entry.op.id}: {entry.op.content}"
        case TagOp():
            text = f"TAG {entry.op.id} {entry.op.tag} x{entry.op.count}"
        case MergeOp():
            text = f"MERGE {', '.join(entry.op.ids)} into {entry.op.keep}"
        case RemoveOp():
            text = f"REMOVE {entry.op.id}"
    return f"undo {entry.reverts}: {text}" if entry.reverts is not None else text


def print_history(
    store: GraphStore, name: str, *, since: int, limit: int | None, out: Console
) -> None:
    pb = require_playbook(store, name)
    entries = store.playbook_history(name, since=since)
    shown = entries if limit is None else entries[max(len(entries) - limit, 0) :]
    table = Table(title=escape(f"{pb.name}: history after version {since} (now at {pb.version})"))
    for column in ("seq", "time (UTC)", "op", "origin", "reason"):
        table.add_column(column)
    for e in shown:
        table.add_row(
            str(e.seq), _time(e.at), escape(describe(e)), escape(e.origin), escape(e.reason)
        )
    out.print(table)
    if len(shown) < len(entries):
        out.print(f"[dim]{len(entries) - len(shown)} older entries not shown (--limit)[/]")


def _check_version(pb: Playbook, version: int, option: str) -> None:
    if not 0 <= version <= pb.version:
        raise UsageError(
            f"{option} {version}: playbook {pb.name!r} has versions 0 to {pb.version}",
            fix=f"`evergraph playbook history {pb.name}` lists them",
        )


def playbook_at(pb: Playbook, history: Sequence[HistoryEntry], version: int) -> Playbook:
    """The playbook as it was at `version`, rebuilt by undoing the later entries."""
    if version == pb.version:
        return pb
    past = revert(pb, history, version, now=_now()).playbook
    return past.model_copy(update={"version": version})


def versions_diff(store: GraphStore, name: str, *, start: int, end: int | None) -> PlaybookDiff:
    pb = require_playbook(store, name)
    stop = pb.version if end is None else end
    _check_version(pb, start, "--from")
    _check_version(pb, stop, "--to")
    history = store.playbook_history(name)
    return diff(playbook_at(pb, history, start), playbook_at(pb, history, stop))


_SHOWN_FIELDS = ("section", "helpful", "harmful", "reflection_id", "updated_at")


def _line(b: Bullet) -> str:
    return escape(f"{b.id} [{b.section}] {b.content}")


def print_diff(change: PlaybookDiff, title: str, out: Console) -> None:
    out.print(f"[bold]{escape(title)}[/]")
    if change.empty:
        out.print("no difference")
        return
    for b in change.added:
        out.print(f"[green]+ {_line(b)}[/]")
    for b in change.removed:
        out.print(f"[red]- {_line(b)}[/]")
    for c in change.changed:
        a, b = c.before, c.after
        out.print(f"[yellow]~ {b.id}[/]")
        if a.content != b.content:
            out.print(f"    [red]- {escape(a.content)}[/]\n    [green]+ {escape(b.content)}[/]")
        for field in _SHOWN_FIELDS:
            old, new = getattr(a, field), getattr(b, field)
            if old != new:
                out.print(escape(f"    {field}: {old} -> {new}"))
    out.print(
        f"[dim]{len(change.added)} added, {len(change.removed)} removed, "
        f"{len(change.changed)} changed[/]"
    )


# -- revert ------------------------------------------------------------------------------------


def plan_revert(store: GraphStore, name: str, version: int) -> tuple[Playbook, Revision]:
    pb = require_playbook(store, name)
    _check_version(pb, version, "--to")
    return pb, revert(pb, store.playbook_history(name), version, now=_now())


# -- export and import -------------------------------------------------------------------------


def export_json(store: GraphStore, name: str) -> str:
    return export_playbook(store, name, now=_now()).model_dump_json(indent=2)


def read_export(path: Path) -> PlaybookExport:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}", fix="pass a file `export` wrote") from None
    try:
        return PlaybookExport.model_validate_json(text)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise UsageError(
            f"{path} is not a playbook export: {problems}",
            fix="pass a file written by `evergraph playbook export` (format_version 1)",
        ) from None


def import_file(
    store: GraphStore, path: Path, *, name: str | None, replace: bool, out: Console
) -> None:
    export = read_export(path)
    revision = import_playbook(store, export, name=name, replace=replace, now=_now())
    pb = revision.playbook
    out.print(
        f"imported {escape(pb.name)}: {len(pb.bullets)} bullets, version {pb.version} "
        f"({len(revision.entries)} history entries written)"
    )
