"""copy_store between two SQLite files: everything arrives, an interrupted copy resumes
without duplicates, progress is reported. (SQLite to Neo4j is the same code on the same
protocol; the Neo4j side of it is covered by the conformance suite.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergraph.errors import UsageError
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, FactStatus, Source
from evergraph.graph.store.copy import copy_store
from evergraph.graph.store.sqlite import SQLiteGraphStore

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def src(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "src.db") as store:
        store.upsert_sources([Source(id=f"s{i}", text=f"doc {i}") for i in range(3)])
        store.upsert_chunks(
            [
                Chunk(id=f"c{i}", source_id=f"s{i % 3}", ordinal=i, text=f"chunk {i} about fox")
                for i in range(7)
            ]
        )
        store.upsert_entities(
            [
                Entity(id=f"e{i}", name=f"E{i}", aliases=[f"alias {i}"], embedding=[1.0, i])
                for i in range(9)
            ]
        )
        store.upsert_facts(
            [
                Fact(
                    id=f"f{i}",
                    subject_id=f"e{i}",
                    predicate="p",
                    object_id=f"e{(i + 1) % 9}",
                    confidence=0.5,
                )
                for i in range(8)
            ]
        )
        store.retire_fact("f0", at=T, reason="old", status=FactStatus.CONTESTED)
        store.add_evidence(
            [
                Evidence(fact_id=f"f{i}", source_id=f"s{i % 3}", chunk_id=f"c{i % 7}", quote=q)
                for i in range(8)
                for q in ("a", "b")
            ]
        )
        yield store


@pytest.fixture
def dst(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "dst.db") as store:
        yield store


class FailingStore(SQLiteGraphStore):
    """A destination that dies on its nth entity batch, as a lost connection would."""

    def __init__(self, path: Path, fail_on: int) -> None:
        super().__init__(path)
        self.calls = 0
        self.fail_on = fail_on

    def upsert_entities(self, entities: Sequence[Entity]) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("lost the destination")
        super().upsert_entities(entities)


def same_content(a: SQLiteGraphStore, b: SQLiteGraphStore) -> None:
    for i in range(3):
        assert a.get_source(f"s{i}") == b.get_source(f"s{i}")
    for i in range(9):
        assert a.get_entity(f"e{i}") == b.get_entity(f"e{i}")
        assert a.find_entities(f"alias {i}") == b.find_entities(f"alias {i}")
    for i in range(8):
        assert a.get_fact(f"f{i}") == b.get_fact(f"f{i}")
        assert a.evidence_for(f"f{i}") == b.evidence_for(f"f{i}")
    assert a.search_chunks_text("fox", k=20) == b.search_chunks_text("fox", k=20)
    assert a.search_entities_vector([1.0, 2.0]) == b.search_entities_vector([1.0, 2.0])


def test_copy_moves_everything_and_counts_match(
    src: SQLiteGraphStore, dst: SQLiteGraphStore
) -> None:
    report = copy_store(src, dst, batch=2)
    assert report.ok and report.mismatches == {}
    assert report.copied == {"source": 3, "chunk": 7, "entity": 9, "fact": 8, "evidence": 16}
    assert (report.destination.facts, report.destination.active_facts) == (8, 7)
    same_content(src, dst)
    assert dst.changes(limit=1)[0].op == "upsert"  # the log records the copy, not src's log


def test_an_interrupted_copy_resumes_without_duplicates(
    src: SQLiteGraphStore, tmp_path: Path
) -> None:
    state = tmp_path / "copy.json"
    flaky = FailingStore(tmp_path / "dst.db", fail_on=3)
    with pytest.raises(ConnectionError):
        copy_store(src, flaky, batch=2, resume_state_path=state)
    saved = json.loads(state.read_text())
    assert saved["kind"] == "entity" and saved["after"]  # two entity pages were committed
    assert flaky.stats().entities == 4
    flaky.close()

    with SQLiteGraphStore(tmp_path / "dst.db") as dst:
        seen: list[tuple[str, int, int]] = []
        report = copy_store(
            src, dst, batch=2, resume_state_path=state, progress=lambda *a: seen.append(a)
        )
        assert report.ok, report.mismatches
        assert report.destination.evidence == 16 and report.destination.entities == 9
        assert [s for s in seen if s[0] == "source"] == []  # done before the failure
        same_content(src, dst)
    assert not state.exists()  # finished: nothing left to resume


def test_progress_counts_up_to_each_total(src: SQLiteGraphStore, dst: SQLiteGraphStore) -> None:
    seen: list[tuple[str, int, int]] = []
    copy_store(
        src, dst, batch=3, progress=lambda kind, done, total: seen.append((kind, done, total))
    )
    assert [s for s in seen if s[0] == "entity"] == [
        ("entity", 3, 9),
        ("entity", 6, 9),
        ("entity", 9, 9),
        ("entity", 9, 9),  # the last page is empty: 9 is a multiple of 3
    ]
    assert seen[-1] == ("evidence", 16, 16)


def test_copy_refuses_a_destination_that_holds_records(
    src: SQLiteGraphStore, dst: SQLiteGraphStore
) -> None:
    dst.upsert_sources([Source(id="mine", text="keep me")])
    with pytest.raises(UsageError, match="already holds records"):
        copy_store(src, dst)
    assert dst.stats().sources == 1


def test_a_state_file_of_another_copy_is_refused(
    src: SQLiteGraphStore, dst: SQLiteGraphStore, tmp_path: Path
) -> None:
    state = tmp_path / "copy.json"
    state.write_text(json.dumps({"source": "/elsewhere.db", "destination": dst.location}))
    with pytest.raises(UsageError, match=r"belongs to a copy from /elsewhere\.db"):
        copy_store(src, dst, resume_state_path=state)
    state.write_text("{not json")
    with pytest.raises(UsageError, match="not a copy state file"):
        copy_store(src, dst, resume_state_path=state)


def test_batch_must_be_positive(src: SQLiteGraphStore, dst: SQLiteGraphStore) -> None:
    with pytest.raises(UsageError, match="batch"):
        copy_store(src, dst, batch=0)
