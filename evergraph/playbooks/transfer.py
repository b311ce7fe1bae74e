"""Playbooks in and out of a store: lookup by name, and the export file format.

An export is the playbook's state and its whole history, so that an import elsewhere keeps
diff, history and revert working. Importing over an existing playbook never erases its
history: the file's history is appended when it continues the stored one, otherwise the
replacement is recorded as entries of its own (origin "import"), which `revert` can undo.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, model_validator

from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.playbooks.deltas import AddOp, DeltaOp, RemoveOp, UpdateOp
from evergraph.playbooks.history import HistoryEntry, Revision, diff, revert, snapshot
from evergraph.playbooks.models import Bullet, Playbook


class PlaybookExport(BaseModel):
    """The file `evergraph playbook export` writes and `import` reads (JSON).

    `format` names the kind of file; `format_version` changes whenever a field is added,
    removed or changes meaning, and readers refuse versions they do not know. `playbook` is
    the current state (bullets with counters, times and cached embeddings); `history` is every
    entry from seq 1 to `playbook.version`, oldest first.
    """

    format: Literal["evergraph-playbook"] = "evergraph-playbook"
    format_version: Literal[1] = 1
    exported_at: datetime
    playbook: Playbook
    history: list[HistoryEntry]

    @model_validator(mode="after")
    def _history_leads_to_the_playbook(self) -> PlaybookExport:
        seqs = [e.seq for e in self.history]
        if seqs != list(range(1, self.playbook.version + 1)):
            raise ValueError(
                f"the history must run from 1 to the playbook's version "
                f"{self.playbook.version} without gaps"
            )
        # Undoing every entry checks each one against the state it produced.
        revert(self.playbook, self.history, 0, now=self.exported_at)
        return self


def require_playbook(store: GraphStore, name: str) -> Playbook:
    """The stored playbook, or a usage error naming the ones there are."""
    found = store.get_playbook(name)
    if found is not None:
        return found
    names = store.list_playbooks()
    there = f"it holds {', '.join(map(repr, names))}" if names else "it holds no playbook yet"
    raise UsageError(
        f"no playbook named {name!r} in {store.location}: {there}",
        fix="pass one of those names (`evergraph playbook list`), or import a playbook",
    )


def export_playbook(store: GraphStore, name: str, *, now: datetime) -> PlaybookExport:
    playbook = require_playbook(store, name)
    return PlaybookExport(exported_at=now, playbook=playbook, history=store.playbook_history(name))


def import_playbook(
    store: GraphStore,
    export: PlaybookExport,
    *,
    name: str | None = None,
    replace: bool = False,
    now: datetime,
    origin: str = "import",
) -> Revision:
    """Store the exported playbook under `name` (default: its own); returns what was saved."""
    target = name or export.playbook.name
    incoming = export.playbook.model_copy(update={"name": target})
    existing = store.get_playbook(target)
    if existing is None:
        revision = Revision(playbook=incoming, entries=export.history)
        store.save_playbook(revision, expected_version=0)
        return revision
    if not replace:
        raise UsageError(
            f"playbook {target!r} already exists (version {existing.version})",
            fix="import under another name with --name NEW, or pass --replace to replace it "
            "(recorded in its history, so `evergraph playbook revert` can undo it)",
        )
    stored = store.playbook_history(target)
    if export.history[: len(stored)] == stored:  # the file continues the stored history
        revision = Revision(playbook=incoming, entries=export.history[len(stored) :])
    else:
        revision = _replacement(existing, incoming, now=now, origin=origin)
    store.save_playbook(revision, expected_version=existing.version)
    return revision


def _replacement(old: Playbook, new: Playbook, *, now: datetime, origin: str) -> Revision:
    """`old` turned into `new` by entries appended to old's history. Sections keep old's
    extra ones, so that reverting past the import leaves every bullet in a declared section."""
    change = diff(old, new)
    steps: list[tuple[DeltaOp, list[Bullet], list[Bullet]]] = [
        *((RemoveOp(id=b.id), [b], []) for b in change.removed),
        *(
            (UpdateOp(id=c.after.id, content=c.after.content), [c.before], [c.after])
            for c in change.changed
        ),
        *((AddOp(section=b.section, content=b.content), [], [b]) for b in change.added),
    ]
    reason = f"replaced by an import of playbook {new.name!r}"
    entries = [
        HistoryEntry(
            seq=old.version + i,
            at=now,
            op=op,
            before=[snapshot(b) for b in before],
            after=[snapshot(b) for b in after],
            origin=origin,
            reason=reason,
        )
        for i, (op, before, after) in enumerate(steps, 1)
    ]
    sections = [*new.sections, *(s for s in old.sections if s not in new.sections)]
    state = new.model_copy(
        update={
            "sections": sections,
            "version": old.version + len(entries),
            "next_id": max(old.next_id, new.next_id),
        }
    )
    return Revision(playbook=state, entries=entries)
