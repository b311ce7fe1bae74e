"""Playbooks in the embedded store beyond the conformance suite: schema upgrade, a crash in the
middle of a save, two processes writing, and `store copy` carrying playbooks with history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from evergraph.errors import PlaybookConflictError, UsageError
from evergraph.graph.models import Source
from evergraph.graph.store import sqlite_schema
from evergraph.graph.store.copy import copy_store
from evergraph.graph.store.playbook_checks import bullet_writes
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.playbooks.deltas import AddOp, RemoveOp, TagOp
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Playbook
from tests.conformance.store_suite import T2, embedded, playbook_batch, saved_playbook

ADDS = [AddOp(section="s", content=c) for c in ("First.", "Second.", "Third.")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "store.db") as s:
        yield s


def test_a_version_2_store_opens_and_gains_playbooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:2])
    with SQLiteGraphStore(path) as old:
        old.upsert_sources([Source(id="s", text="kept")])
        assert old.stats().schema_version == 2
    monkeypatch.undo()
    with SQLiteGraphStore(path) as store:
        assert store.stats().schema_version == len(sqlite_schema.MIGRATIONS)
        assert store.list_playbooks() == []
        saved = saved_playbook(store)
        assert store.get_playbook("finance") == saved.playbook
        source = store.get_source("s")
        assert source is not None and source.text == "kept"


def test_a_crash_in_the_middle_of_a_save_leaves_the_previous_state(
    store: SQLiteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = saved_playbook(store)
    later = playbook_batch(
        first.playbook, RemoveOp(id="str-00001"), TagOp(id="str-00003", tag="harmful")
    )

    def crash(self: HistoryEntry, **_: object) -> str:
        raise MemoryError("the process dies while writing the history")

    # Bullets are rewritten before the history is appended: the crash comes after them.
    monkeypatch.setattr(HistoryEntry, "model_dump_json", crash)
    with pytest.raises(MemoryError):
        store.save_playbook(later, expected_version=first.playbook.version)
    monkeypatch.undo()
    assert store.get_playbook("finance") == first.playbook
    assert store.playbook_history("finance") == first.entries
    store.save_playbook(later, expected_version=first.playbook.version)
    assert store.get_playbook("finance") == later.playbook


def test_two_processes_the_second_writer_loses(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with SQLiteGraphStore(path) as a, SQLiteGraphStore(path) as b:
        saved_playbook(a)
        mine, theirs = a.get_playbook("finance"), b.get_playbook("finance")
        assert mine is not None and theirs is not None
        a.save_playbook(
            playbook_batch(mine, AddOp(section="mistakes", content="From A.")), expected_version=4
        )
        with pytest.raises(PlaybookConflictError, match="another writer"):
            b.save_playbook(
                playbook_batch(theirs, AddOp(section="mistakes", content="From B.")),
                expected_version=4,
            )
        got = b.get_playbook("finance")
        assert got is not None and [x.content for x in got.bullets][-1] == "From A."


def test_the_history_is_append_only_in_the_file(store: SQLiteGraphStore) -> None:
    saved_playbook(store)
    conn = sqlite3.connect(store.location)
    try:
        for sql in (
            "UPDATE playbook_history SET entry = '{}'",
            "DELETE FROM playbook_history WHERE seq = 1",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    finally:
        conn.close()
    assert len(store.playbook_history("finance")) == 4


def test_embeddings_are_stored_as_float32(store: SQLiteGraphStore) -> None:
    first = saved_playbook(store)
    pb = embedded(first.playbook)
    pb = pb.model_copy(
        update={"bullets": [pb.bullets[0].model_copy(update={"embedding": [0.1, 0.2]})]}
    )
    store.save_playbook(Revision(playbook=pb, entries=[]), expected_version=4)
    got = store.get_playbook("finance")
    assert got is not None and got.bullets[0].embedding == pytest.approx([0.1, 0.2], abs=1e-7)


# -- store copy -----------------------------------------------------------------------------


class FailingSave(SQLiteGraphStore):
    """A destination that dies on its nth playbook save, as a lost connection would."""

    def __init__(self, path: Path, fail_on: int) -> None:
        super().__init__(path)
        self.saves = 0
        self.fail_on = fail_on

    def save_playbook(self, revision: Revision, *, expected_version: int) -> None:
        self.saves += 1
        if self.saves == self.fail_on:
            raise ConnectionError("lost the destination")
        super().save_playbook(revision, expected_version=expected_version)


@pytest.fixture
def src(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "src.db") as store:
        store.upsert_sources([Source(id="s", text="a document")])
        for name in ("alpha", "beta", "gamma"):
            saved = saved_playbook(store, name)
            later = playbook_batch(saved.playbook, RemoveOp(id="mis-00002"), at=T2)
            store.save_playbook(later, expected_version=4)
            vectors = Revision(playbook=embedded(later.playbook), entries=[])
            store.save_playbook(vectors, expected_version=5)
        yield store


def same_playbooks(a: SQLiteGraphStore, b: SQLiteGraphStore) -> None:
    assert a.list_playbooks() == b.list_playbooks()
    for name in a.list_playbooks():
        assert a.get_playbook(name) == b.get_playbook(name)
        assert a.playbook_history(name) == b.playbook_history(name)


def test_copy_carries_playbooks_with_their_history(src: SQLiteGraphStore, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with SQLiteGraphStore(tmp_path / "dst.db") as dst:
        report = copy_store(src, dst, progress=lambda *a: seen.append(a))
        assert report.ok and report.playbooks == (3, 3)
        assert report.copied["playbook"] == 3 and report.copied["source"] == 1
        same_playbooks(src, dst)
        beta = dst.get_playbook("beta")
        assert beta is not None and all(b.embedding for b in beta.bullets)
        assert [len(dst.playbook_history(n)) for n in dst.list_playbooks()] == [5, 5, 5]
    assert seen[-1] == ("playbook", 3, 3)


def test_a_destination_holding_a_playbook_is_not_empty(
    src: SQLiteGraphStore, store: SQLiteGraphStore
) -> None:
    saved_playbook(store, "mine")
    with pytest.raises(UsageError, match="already holds records"):
        copy_store(src, store)


def test_an_interrupted_playbook_copy_resumes(src: SQLiteGraphStore, tmp_path: Path) -> None:
    state = tmp_path / "copy.json"
    flaky = FailingSave(tmp_path / "dst.db", fail_on=2)
    with pytest.raises(ConnectionError):
        copy_store(src, flaky, resume_state_path=state)
    saved = json.loads(state.read_text())
    assert saved["kind"] == "playbook" and saved["copied"]["playbook"] == 1
    assert flaky.list_playbooks() == ["alpha"]
    flaky.close()
    with SQLiteGraphStore(tmp_path / "dst.db") as dst:
        report = copy_store(src, dst, resume_state_path=state)
        assert report.ok, report.mismatches
        assert report.copied["playbook"] == 3
        same_playbooks(src, dst)
    assert not state.exists()


# -- what a save writes (both backends: playbook_checks.bullet_writes) ------------------------


def test_a_save_writes_the_touched_bullets_and_removes_the_lost_ones() -> None:
    first = playbook_batch(Playbook(name="p", sections=["s"]), *ADDS)
    stored = {b.id: None for b in first.playbook.bullets}
    later = playbook_batch(
        first.playbook, TagOp(id="s-00002", tag="helpful"), RemoveOp(id="s-00003")
    )
    writes = bullet_writes(later, stored)
    assert writes.added == [] and writes.removed == ["s-00003"]
    assert [b.id for b in writes.changed] == ["s-00002"]
    grown = playbook_batch(later.playbook, AddOp(section="s", content="Fourth."))
    assert [b.id for b in bullet_writes(grown, stored).added] == ["s-00004"]


def test_a_save_without_entries_or_with_new_vectors_rewrites_untouched_bullets() -> None:
    first = playbook_batch(Playbook(name="p", sections=["s"]), *ADDS)
    refresh = Revision(playbook=embedded(first.playbook), entries=[])
    stored = {b.id: 3 for b in first.playbook.bullets}
    assert len(bullet_writes(refresh, stored).changed) == 3
    tagged = playbook_batch(refresh.playbook, TagOp(id="s-00001", tag="harmful"))
    assert [b.id for b in bullet_writes(tagged, stored).changed] == ["s-00001"]  # same length
    unvectored = {**stored, "s-00002": None}
    assert [b.id for b in bullet_writes(tagged, unvectored).changed] == ["s-00001", "s-00002"]
    resized = {**stored, "s-00003": 2}
    assert [b.id for b in bullet_writes(tagged, resized).changed] == ["s-00001", "s-00003"]
