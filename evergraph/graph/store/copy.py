"""Copy one graph store into another (SQLite to Neo4j and back): streaming, resumable.

Kinds go in an order that satisfies every reference (sources, chunks, entities, facts,
evidence), a page at a time (`GraphStore.scan`), each page one transaction in the
destination; then the playbooks, each with its whole history in one transaction. With a
state file, the position is saved after every committed page (and playbook), so an
interrupted copy resumes where it stopped; a page written again is harmless (upserts, and
evidence is keyed). At the end the counts of both stores are compared.

The change log is deliberately not copied: it is the history of writes to one store, its
sequence numbers are the destination's own, and the protocol has no way to write a log line
with a given number or time. The destination's log records the copy itself, one upsert per
record. Playbook histories, on the other hand, are copied whole: their sequence numbers are
the playbook's own versions, which its bullets and revert depend on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

from evergraph.errors import UsageError
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, Source, StoreStats
from evergraph.graph.store.base import GraphStore, Record
from evergraph.playbooks.history import Revision

Progress = Callable[[str, int, int], None]  # kind, records copied so far, total of the kind


@dataclass(frozen=True)
class _Kind(Generic[Record]):
    name: str
    model: type[Record]
    stat: str  # its StoreStats field
    write: Callable[[GraphStore, Sequence[Record]], None]


_KINDS: tuple[_Kind[Any], ...] = (  # in reference order
    _Kind("source", Source, "sources", lambda s, r: s.upsert_sources(r)),
    _Kind("chunk", Chunk, "chunks", lambda s, r: s.upsert_chunks(r)),
    _Kind("entity", Entity, "entities", lambda s, r: s.upsert_entities(r)),
    _Kind("fact", Fact, "facts", lambda s, r: s.upsert_facts(r)),
    _Kind("evidence", Evidence, "evidence", lambda s, r: s.add_evidence(r)),
)
_PLAYBOOKS = "playbook"  # the step after the record kinds
_DONE = "done"
COMPARED = ("sources", "chunks", "entities", "facts", "active_facts", "evidence")


@dataclass
class CopyReport:
    copied: dict[str, int]  # records written per kind, an interrupted run's included
    source: StoreStats
    destination: StoreStats
    playbooks: tuple[int, int] = (0, 0)  # in the source, in the destination

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        """Counts that differ: {field: (source, destination)}."""
        pairs = {f: (getattr(self.source, f), getattr(self.destination, f)) for f in COMPARED}
        pairs["playbooks"] = self.playbooks
        return {f: p for f, p in pairs.items() if p[0] != p[1]}

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class _State:
    """Where a copy stands: the kind being copied (or "done") and the source's cursor in it."""

    source: str
    destination: str
    kind: str = _KINDS[0].name
    after: str = ""
    copied: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Atomically: a crash while saving leaves the previous state."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(vars(self)))
        os.replace(tmp, path)


def _load(path: Path | None, src: GraphStore, dst: GraphStore) -> _State | None:
    if path is None or not path.exists():
        return None
    try:
        state = _State(**json.loads(path.read_text()))
        if state.kind not in {k.name for k in _KINDS} | {_PLAYBOOKS, _DONE}:
            raise ValueError(f"unknown kind {state.kind!r}")
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not a copy state file ({e})", fix="delete it to start the copy over"
        ) from None
    if (state.source, state.destination) != (src.location, dst.location):
        raise UsageError(
            f"{path} belongs to a copy from {state.source} to {state.destination}",
            fix="pass the same --from and --to as the interrupted copy, or another state file",
        )
    return state


def _is_empty(store: GraphStore) -> bool:
    stats = store.stats()
    return not any(getattr(stats, k.stat) for k in _KINDS) and not store.list_playbooks()


def _copy_playbooks(
    src: GraphStore, dst: GraphStore, state: _State, save: Callable[[], None], progress: Progress
) -> None:
    """One transaction per playbook, its history included; a resumed copy skips the ones a
    previous run committed."""
    names = src.list_playbooks()
    present = set(dst.list_playbooks())
    for name in names:
        playbook = src.get_playbook(name)
        if name in present or playbook is None:
            continue
        history = src.playbook_history(name)
        dst.save_playbook(Revision(playbook=playbook, entries=history), expected_version=0)
        state.copied[_PLAYBOOKS] = state.copied.get(_PLAYBOOKS, 0) + 1
        save()
        progress(_PLAYBOOKS, state.copied[_PLAYBOOKS], len(names))


def copy_store(
    src: GraphStore,
    dst: GraphStore,
    *,
    batch: int = 500,
    progress: Progress | None = None,
    resume_state_path: str | os.PathLike[str] | None = None,
) -> CopyReport:
    """Copy every record of `src` into `dst`, which must be empty unless resuming."""
    if batch < 1:
        raise UsageError(f"batch must be at least 1, not {batch}", fix="pass a positive batch")
    path = None if resume_state_path is None else Path(resume_state_path)
    state = _load(path, src, dst)
    if state is None:
        if not _is_empty(dst):
            raise UsageError(
                f"{dst.location} already holds records",
                fix="copy into a new, empty store (or resume an interrupted copy with its "
                "state file)",
            )
        state = _State(src.location, dst.location)
    totals = src.stats()
    names = [k.name for k in _KINDS]

    def save() -> None:
        if path is not None:
            state.save(path)

    def report(kind: str, done: int, total: int) -> None:
        if progress is not None:
            progress(kind, done, total)

    while state.kind not in (_PLAYBOOKS, _DONE):
        kind = _KINDS[names.index(state.kind)]
        records, cursor = src.scan(kind.model, after=state.after, limit=batch)
        if records:
            kind.write(dst, records)
        state.copied[kind.name] = state.copied.get(kind.name, 0) + len(records)
        if cursor:
            state.after = cursor
        else:  # this kind is done: on to the next
            following = names.index(kind.name) + 1
            state.kind = names[following] if following < len(names) else _PLAYBOOKS
            state.after = ""
        save()
        report(kind.name, state.copied[kind.name], getattr(totals, kind.stat))
    if state.kind == _PLAYBOOKS:
        _copy_playbooks(src, dst, state, save, report)
        state.kind = _DONE
    if path is not None:
        path.unlink()
    playbooks = (len(src.list_playbooks()), len(dst.list_playbooks()))
    return CopyReport(dict(state.copied), src.stats(), dst.stats(), playbooks)
