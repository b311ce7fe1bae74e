"""The constructor's rules on a real SQLite store, with scripted extractions (no model)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evergraph.errors import UsageError
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.construct import IntegrateSettings, IntegrationReport, integrate
from evergraph.graph.models import Fact, FactStatus
from evergraph.graph.resolve import Resolver
from evergraph.graph.schema import GraphSchema
from evergraph.graph.store.sqlite import SQLiteGraphStore

from .graph_docs import EMBEDDER, SCHEMA, Claim, Doc, entity, ingest, objects, year

NOW1, NOW2, NOW3, NOW4 = (year(2030, m) for m in (1, 2, 3, 4))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "graph.db") as s:
        yield s


def capital(
    store: SQLiteGraphStore, *, as_of: datetime | None = None, recorded_at: datetime | None = None
) -> list[str]:
    """X's capital(s) by name, as the store answers."""
    x = entity(store, "X")
    facts = store.facts_about(x.id, predicate="capital", as_of=as_of, recorded_at=recorded_at)
    return objects(store, facts)


def the_fact(store: SQLiteGraphStore, subject: str, predicate: str) -> list[Fact]:
    """Every record of (subject, predicate), retired ones included."""
    return store.facts_about(entity(store, subject).id, predicate=predicate, history=True)


# -- evidence and reinforcement --------------------------------------------------------------


def test_a_new_fact_keeps_its_evidence_with_the_sample_agreement(store: SQLiteGraphStore) -> None:
    doc = Doc([Claim("Aspirin", "treats", "Headache", agreement=0.6)], date=year(2019), key="d1")
    report = ingest(store, doc, now=NOW1)
    assert report == IntegrationReport(
        documents=1, entities_created=2, facts_created=1, evidence_added=1
    )
    (fact,) = the_fact(store, "Aspirin", "treats")
    assert (fact.confidence, fact.support, fact.status) == (0.6, 1, FactStatus.ACTIVE)
    assert (fact.valid_from, fact.recorded_at, fact.last_seen) == (year(2019), NOW1, year(2019))
    (ev,) = store.evidence_for(fact.id)
    source, chunks = doc.source()
    assert (ev.source_id, ev.chunk_id, ev.quote) == (
        source.id,
        chunks[0].id,
        "Aspirin treats Headache.",
    )
    assert (ev.agreement, ev.confidence, ev.model, ev.extracted_at) == (0.6, 0.6, "scripted", NOW1)
    assert (ev.subject_mention, ev.object_mention) == ("Aspirin", "Headache")
    assert store.get_source(source.id) is not None
    assert [c.id for c in chunks] == [c.id for c, _ in store.search_chunks_text("aspirin")]


def test_recurring_facts_combine_by_noisy_or_once_per_source(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("A", "r", "B", agreement=0.6)], date=year(2019)), now=NOW1)
    report = ingest(store, Doc([Claim("A", "r", "B", agreement=0.5)], date=year(2021)), now=NOW2)
    assert (report.facts_created, report.facts_reinforced) == (0, 1)
    (fact,) = the_fact(store, "A", "r")
    assert fact.support == 2
    assert fact.confidence == pytest.approx(1 - 0.4 * 0.5)
    assert fact.last_seen == year(2021) and fact.valid_from == year(2019)

    two_quotes = Doc(
        [
            Claim("A", "r", "B", agreement=0.3, quote="A r B, says one line."),
            Claim("a", "r", "b", agreement=0.4, quote="And B is r of A, says another."),
        ],
        date=year(2020),
    )
    report = ingest(store, two_quotes, now=NOW3)
    assert (report.facts_reinforced, report.evidence_added) == (1, 2)
    (fact,) = the_fact(store, "A", "r")
    assert fact.support == 3  # one more source, not two
    assert fact.confidence == pytest.approx(1 - 0.4 * 0.5 * 0.6)  # the source's best quote
    assert len(store.evidence_for(fact.id)) == 4
    assert fact.last_seen == year(2021)  # an older document does not move it back


def test_confidence_is_capped_below_one(store: SQLiteGraphStore) -> None:
    for y in range(2000, 2006):
        ingest(store, Doc([Claim("A", "r", "B", agreement=1.0)], date=year(y)), now=NOW1)
    (fact,) = the_fact(store, "A", "r")
    assert (fact.support, fact.confidence) == (6, 0.99)
    with pytest.raises(UsageError, match="cap"):
        source, chunks = Doc([Claim("A", "r", "C")]).source()
        extraction = Doc([Claim("A", "r", "C")]).extraction(source, chunks)
        integrate(
            store,
            source,
            chunks,
            extraction,
            embedder=EMBEDDER,
            settings=IntegrateSettings(confidence_cap=1.0),
        )


def test_an_earlier_document_moves_the_start_of_a_plain_fact_back(
    store: SQLiteGraphStore,
) -> None:
    ingest(store, Doc([Claim("A", "r", "B")], date=year(2015)), now=NOW1)
    ingest(store, Doc([Claim("A", "r", "B")], date=year(2012)), now=NOW2)
    (fact,) = the_fact(store, "A", "r")
    assert (fact.valid_from, fact.support) == (year(2012), 2)


def test_literal_objects(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("A", "weight", value=" 42  mg ")], date=year(2015)), now=NOW1)
    ingest(store, Doc([Claim("A", "weight", value="42 mg")], date=year(2016)), now=NOW2)
    (fact,) = the_fact(store, "A", "weight")
    assert (fact.object_id, fact.object_value, fact.support) == (None, "42 mg", 2)


# -- functional predicates over time ---------------------------------------------------------


def test_a_newer_value_retires_the_older_one_as_history(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2010)), now=NOW1)
    report = ingest(store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW2)
    assert (report.facts_created, report.retired) == (1, 1)
    old, new = sorted(the_fact(store, "X", "capital"), key=lambda f: f.valid_from)
    assert (old.valid_to, old.retired_at, old.status) == (year(2015), NOW2, FactStatus.SUPERSEDED)
    assert old.retire_reason == f"superseded by {new.id} from {year(2015)}"
    assert (new.valid_from, new.valid_to, new.retired_at) == (year(2015), None, None)
    assert store.get_fact(old.id) is not None  # never deleted
    retire = [c for c in store.changes(limit=1000) if c.op == "retire"]
    assert [(c.item_id, c.payload["reason"]) for c in retire] == [(old.id, old.retire_reason)]


def test_reads_as_of_a_date_and_as_recorded_at_a_time(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2010)), now=NOW1)
    ingest(store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW3)
    assert capital(store, as_of=year(2012)) == ["Y"]
    assert capital(store, as_of=year(2020)) == ["Z"]
    assert capital(store) == ["Z"]
    assert capital(store, as_of=year(2009)) == []
    between = NOW2  # after the first ingestion, before the second
    assert capital(store, as_of=year(2012), recorded_at=between) == ["Y"]
    assert capital(store, as_of=year(2020), recorded_at=NOW1 - timedelta(days=1)) == []
    assert capital(store, as_of=year(2020), recorded_at=NOW4) == ["Z"]


def test_a_late_older_document_does_not_retire_the_newer_fact(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW1)
    report = ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2010)), now=NOW2)
    assert (report.facts_created, report.retired) == (1, 1)  # the late one, as history
    facts = {objects(store, [f])[0]: f for f in the_fact(store, "X", "capital")}
    assert facts["Z"].retired_at is None and facts["Z"].status is FactStatus.ACTIVE
    y = facts["Y"]
    assert (y.valid_from, y.valid_to, y.status) == (year(2010), year(2015), FactStatus.SUPERSEDED)
    assert "arrived late" in y.retire_reason
    assert capital(store, as_of=year(2012)) == ["Y"]
    assert capital(store) == ["Z"]


def test_history_fills_in_whatever_the_order(store: SQLiteGraphStore) -> None:
    """Y 2010, Z 2015, Y again 2020; then late: Y 2008 (extends Y back), W 2012 (cuts Y,
    bounded by Z). One timeline, no overlaps, a record per stretch."""
    ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2010)), now=NOW1)
    ingest(store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW1)
    ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2020)), now=NOW2)
    ingest(store, Doc([Claim("X", "capital", "Y")], date=year(2008)), now=NOW3)
    ingest(store, Doc([Claim("X", "capital", "W")], date=year(2012)), now=NOW4)
    spans = sorted(
        (f.valid_from.year, f.valid_to.year if f.valid_to else None, *objects(store, [f]))
        for f in the_fact(store, "X", "capital")
        if f.valid_from is not None
    )
    assert spans == [(2008, 2012, "Y"), (2012, 2015, "W"), (2015, 2020, "Z"), (2020, None, "Y")]
    for y, expected in ((2009, "Y"), (2013, "W"), (2016, "Z"), (2021, "Y")):
        assert capital(store, as_of=year(y)) == [expected], y


def test_same_date_weaker_value_is_retired(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Y", agreement=0.9)], date=year(2010)), now=NOW1)
    ingest(store, Doc([Claim("X", "capital", "Z", agreement=0.5)], date=year(2010)), now=NOW2)
    assert capital(store) == ["Y"]
    z = next(f for f in the_fact(store, "X", "capital") if objects(store, [f]) == ["Z"])
    assert z.retired_at == NOW2 and z.valid_to == z.valid_from  # never held
    assert z.retire_reason.startswith("weaker than")
    assert capital(store, as_of=year(2011)) == ["Y"]


def test_a_same_date_tie_is_contested_until_one_pulls_ahead(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Y", agreement=0.7)], date=year(2010)), now=NOW1)
    report = ingest(
        store, Doc([Claim("X", "capital", "Z", agreement=0.72)], date=year(2010)), now=NOW2
    )
    assert (report.contested, report.retired) == (2, 0)
    assert capital(store) == ["Y", "Z"]
    assert {f.status for f in the_fact(store, "X", "capital")} == {FactStatus.CONTESTED}
    assert store.stats().active_facts == 0
    again = Doc([Claim("X", "capital", "Z", agreement=0.6)], year(2010), text="Z, again.")
    assert ingest(store, again, now=NOW3).retired == 1
    assert capital(store) == ["Z"]
    z = next(f for f in the_fact(store, "X", "capital") if f.retired_at is None)
    assert (z.status, z.support) == (FactStatus.ACTIVE, 2)


def test_an_undated_claim_counts_as_older_than_any_dated_one(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW1)
    ingest(store, Doc([Claim("X", "capital", "Y")]), now=NOW2)
    assert capital(store) == ["Z"]
    assert capital(store, as_of=year(1900)) == ["Y"]  # held, at some time before 2015
    ingest(store, Doc([Claim("X", "capital", "W", agreement=0.8)], text="undated W"), now=NOW3)
    history = {objects(store, [f])[0]: f for f in the_fact(store, "X", "capital")}
    assert history["W"].status is history["Y"].status is FactStatus.CONTESTED  # same "date"
    assert capital(store, as_of=year(1900)) == ["W", "Y"]


def test_functional_literal_values(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("X", "population", value="1000")], date=year(2000)), now=NOW1)
    ingest(store, Doc([Claim("X", "population", value="2000")], date=year(2010)), now=NOW2)
    x = entity(store, "X")
    assert objects(store, store.facts_about(x.id, as_of=year(2005))) == ["1000"]
    assert objects(store, store.facts_about(x.id)) == ["2000"]


def test_without_a_schema_nothing_is_functional(store: SQLiteGraphStore) -> None:
    ingest(
        store, Doc([Claim("X", "capital", "Y")], date=year(2010)), now=NOW1, schema=GraphSchema()
    )
    ingest(
        store, Doc([Claim("X", "capital", "Z")], date=year(2015)), now=NOW2, schema=GraphSchema()
    )
    assert capital(store) == ["Y", "Z"]


# -- idempotence, versions, transactions --------------------------------------------------------


def test_integrating_the_same_document_again_is_a_no_op(store: SQLiteGraphStore) -> None:
    doc = Doc([Claim("A", "r", "B"), Claim("X", "capital", "Y")], date=year(2019), key="d")
    ingest(store, doc, now=NOW1)
    before, log = store.stats(), store.changes(limit=10_000)
    again = ingest(store, doc, now=NOW2)
    assert again == IntegrationReport(documents=1, skipped=1)
    assert store.stats() == before and store.changes(limit=10_000) == log


def test_a_changed_document_supersedes_its_old_version(store: SQLiteGraphStore) -> None:
    v1 = Doc([Claim("A", "r", "B"), Claim("A", "r", "C"), Claim("A", "r", "D")], year(2019), "doc")
    ingest(store, v1, now=NOW1)
    ingest(store, Doc([Claim("A", "r", "D")], date=year(2019), key="other"), now=NOW1)
    v2 = Doc([Claim("A", "r", "B", agreement=0.5)], date=year(2019), key="doc", text="v2 text")
    report = ingest(store, v2, now=NOW2)
    assert (report.sources_superseded, report.facts_created, report.facts_reinforced) == (1, 0, 1)
    assert report.retired == 1  # A r C: its only evidence is gone
    facts = {objects(store, [f])[0]: f for f in the_fact(store, "A", "r")}
    b, c, d = facts["B"], facts["C"], facts["D"]
    assert (b.support, b.confidence, b.retired_at) == (1, 0.5, None)  # v2 alone, not v1 + v2
    assert [e.source_id for e in store.evidence_for(b.id)] == [v2.source()[0].id]
    assert (c.retired_at, c.retire_reason, c.valid_to) == (NOW2, "source superseded", None)
    assert store.evidence_for(c.id) == []
    assert (d.support, d.retired_at) == (1, None)  # the other document still supports it
    assert store.get_source(v1.source()[0].id) is None  # the old version and its chunks
    assert [s.id for s in store.find_sources("doc")] == [v2.source()[0].id]
    assert objects(store, store.facts_about(entity(store, "A").id)) == ["B", "D"]


def test_a_withdrawn_fact_asserted_again_gets_a_new_record(store: SQLiteGraphStore) -> None:
    ingest(store, Doc([Claim("A", "r", "B")], date=year(2019), key="doc"), now=NOW1)
    ingest(store, Doc([Claim("A", "r", "C")], date=year(2019), key="doc"), now=NOW2)
    ingest(store, Doc([Claim("A", "r", "B")], date=year(2020), key="else"), now=NOW3)
    records = [f for f in the_fact(store, "A", "r") if objects(store, [f]) == ["B"]]
    assert sorted(f.retired_at is None for f in records) == [False, True]
    assert len({f.id for f in records}) == 2
    assert store.facts_about(entity(store, "A").id, as_of=year(2020), recorded_at=NOW2) != []


def test_a_failed_integration_leaves_nothing_behind(
    store: SQLiteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = Resolver(store, EMBEDDER)
    doc = Doc([Claim("A", "r", "B")], date=year(2019))

    def broken(*_: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "add_evidence", broken)
    with pytest.raises(RuntimeError):
        ingest(store, doc, now=NOW1, resolver=resolver)
    assert store.stats().sources == store.stats().entities == store.stats().facts == 0
    monkeypatch.undo()
    report = ingest(store, doc, now=NOW1, resolver=resolver)  # the resolver forgot "A" and "B"
    assert (report.entities_created, report.facts_created) == (2, 1)


def test_extraction_and_chunks_must_belong_to_the_source(store: SQLiteGraphStore) -> None:
    source, chunks = Doc([Claim("A", "r", "B")]).source()
    other = Doc([Claim("A", "r", "C")])
    other_source, other_chunks = other.source()
    with pytest.raises(UsageError, match="extraction is of source"):
        integrate(
            store, source, chunks, other.extraction(other_source, other_chunks), embedder=EMBEDDER
        )
    foreign = other.extraction(other_source, other_chunks).model_copy(
        update={"source_id": source.id}
    )
    with pytest.raises(UsageError, match="chunks that were not passed"):
        integrate(store, source, chunks, foreign, embedder=EMBEDDER)
    empty = DocumentExtraction(source_id=source.id)
    assert integrate(store, source, chunks, empty, embedder=EMBEDDER).facts_created == 0


def test_entities_are_shared_and_counted_per_document(store: SQLiteGraphStore) -> None:
    resolver = Resolver(store, EMBEDDER)
    ingest(store, Doc([Claim("Barack Obama", "born_in", "Hawaii")], year(2008)), resolver=resolver)
    ingest(store, Doc([Claim("barack obama", "visited", "Paris")], year(2009)), resolver=resolver)
    obama = entity(store, "Barack Obama")
    assert (obama.mentions, obama.first_seen, obama.last_seen) == (2, year(2008), year(2009))
    assert store.stats().entities == 3
    assert obama.embedding is not None and len(obama.embedding) == EMBEDDER.dim


def test_reports_add_up() -> None:
    a = IntegrationReport(documents=1, facts_created=2, merges=1)
    b = IntegrationReport(documents=1, skipped=1)
    assert a + b == IntegrationReport(documents=2, skipped=1, facts_created=2, merges=1)


def test_the_schema_fixture_is_functional() -> None:
    assert SCHEMA.is_functional("capital") and not SCHEMA.is_functional("r")
