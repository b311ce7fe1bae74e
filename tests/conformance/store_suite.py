"""The contract every `GraphStore` backend passes: the same tests, run once per backend.

A backend's test module subclasses `StoreConformance` and supplies one fixture, `store`,
yielding a new, empty store (see test_sqlite.py). Nothing else is backend-specific.

Change-log vocabulary checked here: op "upsert" | "add" | "remove" | "retire" | "delete", kind
"source" | "chunk" | "entity" | "fact" | "evidence"; a retire records its reason.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter

import pytest

from evergraph.errors import EvergraphError, PlaybookConflictError, StoreError, UsageError
from evergraph.graph.models import Chunk, Entity, Evidence, Fact, FactStatus, Merge, Source
from evergraph.graph.store.base import GraphStore, Record
from evergraph.playbooks.apply import DeltaResult, apply_deltas
from evergraph.playbooks.deltas import AddOp, DeltaOp, RemoveOp, TagOp, UpdateOp
from evergraph.playbooks.history import Revision
from evergraph.playbooks.models import Playbook

T0 = datetime(2020, 1, 1, tzinfo=UTC)
T1 = datetime(2021, 1, 1, tzinfo=UTC)
T2 = datetime(2022, 1, 1, tzinfo=UTC)
T3 = datetime(2023, 1, 1, tzinfo=UTC)
FUTURE = datetime(2200, 1, 1, tzinfo=UTC)  # after "now" whenever these tests run
US = timedelta(microseconds=1)
CEST = timezone(timedelta(hours=2))

HOSTILE_QUERIES = [
    '"',
    '""',
    "'",
    "fox' OR '1'='1",
    "AND",
    "OR NOT",
    "fox AND OR NOT dog",
    "*",
    "fox*",
    "NEAR(",
    "NEAR(fox dog, 2)",
    "text:fox",
    "^fox",
    "-fox +dog",
    "(fox",
    "{fox dog}",
    "\\",
    "%_",
    "; DROP TABLE chunks; --",
    "日本語のテキスト",
    "Füchse 🦊 straße",
    "fox\x00dog",
    "fox " * 2000,
]
EMPTY_QUERIES = ["", "   ", '"" *', "()", "🦊"]


def entity(eid: str, name: str | None = None, **fields: object) -> Entity:
    return Entity.model_validate({"id": eid, "name": name or eid.upper(), **fields})


def fact(fid: str, subject: str, obj: str | None = None, **fields: object) -> Fact:
    fields.setdefault("recorded_at", T0)
    if obj is None:
        fields.setdefault("object_value", "literal")
    return Fact.model_validate(
        {
            "id": fid,
            "subject_id": subject,
            "predicate": "rel",
            "object_id": obj,
            "confidence": 0.5,
            **fields,
        }
    )


def ids(records: list[Fact]) -> set[str]:
    return {r.id for r in records}


def holds_grid() -> list[Fact]:
    """Facts covering every case of `Fact.holds`, including microsecond boundaries."""
    combos = itertools.product(
        [None, T1, FUTURE],  # valid_from
        [None, T1 + US, T3, FUTURE],  # valid_to
        [T0, T2],  # recorded_at
        [None, T1, T3],  # retired_at
    )
    return [
        fact(
            f"g{i}",
            *(("x", "y") if i % 2 else ("y", "x")),  # x as subject and as object
            valid_from=vf,
            valid_to=vt,
            recorded_at=rec,
            retired_at=ret,
        )
        for i, (vf, vt, rec, ret) in enumerate(combos)
    ]


def playbook_batch(pb: Playbook, *ops: DeltaOp, at: datetime = T1) -> DeltaResult:
    result = apply_deltas(pb, ops, now=at, reflection_id="r1")
    assert not result.rejected
    return result


def saved_playbook(store: GraphStore, name: str = "finance") -> DeltaResult:
    """A playbook at version 4 (three bullets, counters set), saved as a new one."""
    first = playbook_batch(
        Playbook(name=name, sections=["strategies", "mistakes"]),
        AddOp(section="strategies", content="Read the whole question."),
        AddOp(section="mistakes", content="1% is 100 basis points, not 1."),
        AddOp(section="strategies", content="Quote the exact XBRL tag."),
        TagOp(id="str-00001", tag="helpful", count=3),
        at=T1.astimezone(CEST),
    )
    store.save_playbook(first, expected_version=0)
    return first


def embedded(pb: Playbook) -> Playbook:
    """Every bullet with an embedding exact in float32."""
    bullets = [
        b.model_copy(update={"embedding": [0.5, -1.0, i / 4]}) for i, b in enumerate(pb.bullets)
    ]
    return pb.model_copy(update={"bullets": bullets})


class StoreConformance:
    """Subclass as `Test<Backend>` and provide a `store` fixture yielding an empty store."""

    @pytest.fixture
    def graph(self, store: GraphStore) -> GraphStore:
        """a -f1-> b <-f2- c -f3-> d -f4-> e, and a literal-valued fact f0 on a."""
        store.upsert_entities([entity(e) for e in "abcde"])
        store.upsert_facts(
            [
                fact("f0", "a"),
                fact("f1", "a", "b"),
                fact("f2", "c", "b"),
                fact("f3", "c", "d"),
                fact("f4", "d", "e"),
            ]
        )
        return store

    @pytest.fixture
    def corpus(self, store: GraphStore) -> GraphStore:
        store.upsert_sources([Source(id="s1", text="doc one"), Source(id="s2", text="doc two")])
        store.upsert_chunks(
            [
                Chunk(
                    id="c1",
                    source_id="s1",
                    ordinal=0,
                    text="The quick brown fox jumps over the lazy dog.",
                    embedding=[1.0, 0.0, 0.0],
                ),
                Chunk(
                    id="c2",
                    source_id="s1",
                    ordinal=1,
                    text="Aspirin inhibits platelet aggregation in most patients.",
                    embedding=[0.0, 1.0, 0.0],
                ),
                Chunk(
                    id="c3",
                    source_id="s2",
                    ordinal=0,
                    text="A dog barked; the fox ran. Foxes are quick, dogs are loyal.",
                    embedding=[0.7, 0.7, 0.0],
                ),
            ]
        )
        return store

    # -- round trips ----------------------------------------------------------------------

    def test_is_a_graph_store(self, store: GraphStore) -> None:
        assert isinstance(store, GraphStore)
        assert store.location

    def test_source_round_trip(self, store: GraphStore) -> None:
        src = Source(
            id="s1",
            key="doc-1",
            title="Über",
            text="Text with ünïcode 🦊 and\nnewlines",
            uri="file:///tmp/a.txt",
            published_at=datetime(2021, 5, 1, 12, 30, 15, 123456, tzinfo=CEST),
            ingested_at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            metadata={"pages": 3, "tags": ["a", "b"], "nested": {"x": None, "y": 1.5}},
        )
        store.upsert_sources([src])
        got = store.get_source("s1")
        assert got == src
        assert got is not None and got.published_at is not None
        assert got.published_at.utcoffset() is not None  # aware, same instant

    def test_chunk_round_trip(self, corpus: GraphStore) -> None:
        chunk = Chunk(
            id="c2",
            source_id="s1",
            ordinal=1,
            text="Aspirin inhibits platelet aggregation in most patients.",
            embedding=[0.0, 1.0, 0.0],
        )
        scanned, _ = corpus.scan(Chunk)
        assert chunk in scanned
        # search hits come without their vectors (no reader of a hit needs one)
        (hit, _), *_ = corpus.search_chunks_vector([0.0, 1.0, 0.0], k=1)
        assert hit == chunk.model_copy(update={"embedding": None})
        (hit, _), *_ = corpus.search_chunks_text("aspirin platelet")
        assert hit == chunk.model_copy(update={"embedding": None})

    def test_entity_round_trip(self, store: GraphStore) -> None:
        e = Entity(
            id="e1",
            name="Acetylsalicylic acid",
            type="Drug",
            aliases=["Aspirin", "ASA"],
            summary="An NSAID.",
            embedding=[0.5, -0.25, 0.125],  # exact in float32
            first_seen=datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=CEST),
            last_seen=datetime(2024, 1, 1, tzinfo=UTC),
            mentions=7,
            merges=[
                Merge(
                    name="A.S.A.",
                    added=["A.S.A.", "ASA"],
                    rule="fuzzy",
                    score=93.5,
                    source_id="s9",
                    at=datetime(2024, 1, 1, tzinfo=CEST),
                    undone_at=datetime(2024, 2, 1, tzinfo=UTC),
                )
            ],
        )
        store.upsert_entities([e])
        assert store.get_entity("e1") == e

    def test_embeddings_keep_float32_precision(self, store: GraphStore) -> None:
        store.upsert_entities([entity("e1", embedding=[0.1, 1 / 3, -2.718281828])])
        got = store.get_entity("e1")
        assert got is not None and got.embedding == pytest.approx([0.1, 1 / 3, -2.718281828])

    def test_fact_round_trip(self, store: GraphStore) -> None:
        store.upsert_entities([entity("a"), entity("b")])
        f = Fact(
            id="f1",
            subject_id="a",
            predicate="treats",
            object_id="b",
            confidence=0.875,
            support=3,
            valid_from=datetime(2019, 1, 1, tzinfo=CEST),
            valid_to=datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            recorded_at=datetime(2024, 6, 1, 8, tzinfo=UTC),
            retired_at=datetime(2024, 7, 1, tzinfo=UTC),
            retire_reason="contradicted by s9",
            status=FactStatus.CONTESTED,
            last_seen=datetime(2024, 6, 30, tzinfo=UTC),
        )
        literal = fact("f2", "a", object_value="42 mg", recorded_at=datetime(2024, 1, 1))
        store.upsert_facts([f, literal])
        assert store.get_fact("f1") == f
        got = store.get_fact("f2")
        assert got == literal
        assert got is not None and got.recorded_at.tzinfo is not None  # naive was taken as UTC

    def test_evidence_round_trip(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity("a")])
        corpus.upsert_facts([fact("f1", "a")])
        ev = [
            Evidence(
                fact_id="f1",
                source_id="s1",
                chunk_id="c1",
                quote="quick brown fox",
                agreement=0.8,
                model="qwen",
                extracted_at=datetime(2024, 1, 1, tzinfo=CEST),
                confidence=0.75,
                subject_mention="A",
                object_mention="the literal",
            ),
            Evidence(fact_id="f1", source_id="s2", extracted_at=datetime(2024, 2, 1, tzinfo=UTC)),
        ]
        corpus.add_evidence(ev)
        assert corpus.evidence_for("f1") == ev
        assert corpus.evidence_for("nope") == []

    def test_get_many_returns_what_exists_in_the_order_asked(self, graph: GraphStore) -> None:
        got = graph.get_facts(["f3", "nope", "f1", "f3"])
        assert [f.id for f in got] == ["f3", "f1"]
        assert got[0] == graph.get_fact("f3")
        graph.retire_fact("f1", at=T1, reason="x")
        assert [f.id for f in graph.get_facts(["f1"])] == ["f1"]  # retired ones too
        assert [e.id for e in graph.get_entities(["e", "x", "a"])] == ["e", "a"]
        assert graph.get_entities([]) == [] and graph.get_facts([]) == []

    def test_find_sources_by_document_key(self, store: GraphStore) -> None:
        store.upsert_sources(
            [
                Source(id="v2", key="doc", text="two", ingested_at=T2),
                Source(id="v1", key="doc", text="one", ingested_at=T1),
                Source(id="other", key="doc-2", text="x"),
                Source(id="keyless", text="y"),
            ]
        )
        assert [s.id for s in store.find_sources("doc")] == ["v1", "v2"]  # oldest first
        assert store.find_sources("DOC") == []  # keys are exact
        assert store.find_sources("") == []  # keyless sources are no versions of anything

    def test_missing_records_are_none(self, store: GraphStore) -> None:
        assert store.get_source("x") is None
        assert store.get_entity("x") is None
        assert store.get_fact("x") is None

    def test_upsert_replaces_the_whole_record(self, store: GraphStore) -> None:
        store.upsert_sources([Source(id="s", text="v1", metadata={"old": 1})])
        store.upsert_sources([Source(id="s", text="v2")])
        got = store.get_source("s")
        assert got is not None and (got.text, got.metadata) == ("v2", {})

        store.upsert_entities([entity("e", "Old", aliases=["Gone"], summary="s", mentions=3)])
        store.upsert_entities([entity("e", "New")])
        assert store.get_entity("e") == entity("e", "New")
        assert store.find_entities("gone") == []
        assert store.find_entities("old") == []

        store.upsert_entities([entity("o")])
        store.upsert_facts([fact("f", "e", "o", confidence=0.2, retire_reason="x")])
        store.upsert_facts([fact("f", "e", confidence=0.9)])
        assert store.get_fact("f") == fact("f", "e", confidence=0.9)
        assert store.stats().facts == 1

    def test_last_duplicate_in_a_batch_wins(self, store: GraphStore) -> None:
        store.upsert_entities([entity("e", "First", aliases=["one"]), entity("e", "Second")])
        assert store.get_entity("e") == entity("e", "Second")
        assert store.find_entities("one") == []

    # -- transactions ---------------------------------------------------------------------

    def test_transaction_commits_together(self, store: GraphStore) -> None:
        with store.transaction():
            store.upsert_facts([fact("f", "a", "b")])  # before its entities: order is free
            store.upsert_entities([entity("a"), entity("b")])
        assert store.get_fact("f") is not None
        assert store.stats().entities == 2

    def test_transaction_rolls_back_on_error(self, store: GraphStore) -> None:
        store.upsert_entities([entity("kept")])
        before = store.changes()
        with pytest.raises(RuntimeError), store.transaction():
            store.upsert_entities([entity("a"), entity("kept", "Renamed")])
            store.upsert_facts([fact("f", "a")])
            raise RuntimeError("boom")
        assert store.get_entity("a") is None
        assert store.get_fact("f") is None
        assert store.get_entity("kept") == entity("kept")
        assert store.changes() == before  # the log rolls back with the data

    def test_nested_transaction_joins_the_outer_one(self, store: GraphStore) -> None:
        with pytest.raises(RuntimeError), store.transaction():
            store.upsert_entities([entity("outer")])
            with store.transaction():
                store.upsert_entities([entity("inner")])
            raise RuntimeError("after the inner block committed")
        assert store.get_entity("inner") is None
        assert store.get_entity("outer") is None

    def test_error_in_nested_block_dooms_the_outer_one(self, store: GraphStore) -> None:
        with pytest.raises(StoreError), store.transaction():
            store.upsert_entities([entity("outer")])
            with pytest.raises(RuntimeError), store.transaction():
                store.upsert_entities([entity("inner")])
                raise RuntimeError("inner fails; the caller swallows it")
            with pytest.raises(StoreError):  # writing on would only be rolled back
                store.upsert_entities([entity("later")])
        assert store.stats().entities == 0
        store.upsert_entities([entity("after")])  # the store is usable again
        assert store.stats().entities == 1

    def test_dangling_reference_is_rejected_atomically(self, store: GraphStore) -> None:
        with pytest.raises(EvergraphError):
            store.upsert_facts([fact("f", "nobody")])
        assert store.get_fact("f") is None
        assert store.changes() == []

    # -- retirement and time ------------------------------------------------------------

    def test_retire_never_deletes(self, graph: GraphStore) -> None:
        graph.retire_fact("f1", at=T2, reason="superseded by f9", valid_to=T1)
        got = graph.get_fact("f1")
        assert got is not None
        assert (got.retired_at, got.valid_to) == (T2, T1)
        assert (got.status, got.retire_reason) == (FactStatus.SUPERSEDED, "superseded by f9")
        assert graph.stats().facts == 5
        assert graph.stats().active_facts == 4
        assert "f1" not in ids(graph.facts_about("a"))
        assert "f1" in ids(graph.facts_about("a", as_of=T0 + timedelta(days=1)))  # history
        believed_then = graph.facts_about("a", as_of=T0 + US, recorded_at=T1)
        assert "f1" in ids(believed_then)

    def test_retire_with_status_and_open_validity(self, graph: GraphStore) -> None:
        graph.retire_fact("f2", at=T1, reason="conflict", status=FactStatus.CONTESTED)
        got = graph.get_fact("f2")
        assert got is not None and got.status == FactStatus.CONTESTED and got.valid_to is None
        assert "f2" not in ids(graph.facts_about("c", as_of=T0 + US))  # withdrawn altogether

    def test_retire_unknown_fact_is_a_usage_error(self, store: GraphStore) -> None:
        with pytest.raises(UsageError):
            store.retire_fact("nope", at=T1, reason="x")

    @pytest.mark.parametrize("as_of", [None, T0, T1, T1 + US, T2, T3, FUTURE + US])
    def test_facts_about_matches_fact_holds(
        self, store: GraphStore, as_of: datetime | None
    ) -> None:
        grid = holds_grid()
        store.upsert_entities([entity("x"), entity("y")])
        store.upsert_facts(grid)
        for recorded_at in [None, T0, T1, T1 + US, T2, T3]:
            expected = {f.id for f in grid if f.holds(as_of, recorded_at)}
            got = store.facts_about("x", as_of=as_of, recorded_at=recorded_at)
            assert ids(got) == expected, (as_of, recorded_at)
            if recorded_at is None:
                assert ids(store.neighbourhood(["x"], hops=1, as_of=as_of)) == expected, as_of

    def test_facts_about_history_is_every_fact(self, store: GraphStore) -> None:
        grid = holds_grid()
        store.upsert_entities([entity("x"), entity("y")])
        store.upsert_facts(grid)
        assert ids(store.facts_about("x", history=True)) == ids(grid)
        assert ids(store.facts_about("x", predicate="other", history=True)) == set()
        with pytest.raises(UsageError, match="history"):
            store.facts_about("x", as_of=T1, history=True)
        with pytest.raises(UsageError, match="history"):
            store.facts_about("x", recorded_at=T1, history=True)

    def test_facts_by_subject_and_predicate_whatever_their_time(self, graph: GraphStore) -> None:
        graph.upsert_facts([fact("p1", "c", "b", predicate="causes"), fact("p2", "b", "c")])
        graph.retire_fact("f3", at=T1, reason="old")
        found = graph.facts_by_subject([("c", "rel"), ("c", "causes"), ("e", "rel"), ("c", "rel")])
        assert sorted(f.id for f in found) == ["f2", "f3", "p1"]  # c as subject only
        assert graph.facts_by_subject([]) == []
        assert graph.facts_by_subject([("nobody", "rel")]) == []

    def test_facts_about_filters_by_predicate(self, graph: GraphStore) -> None:
        graph.upsert_facts([fact("p1", "b", "d", predicate="causes")])
        assert ids(graph.facts_about("b")) == {"f1", "f2", "p1"}
        assert ids(graph.facts_about("b", predicate="causes")) == {"p1"}
        assert ids(graph.facts_about("d", predicate="causes")) == {"p1"}
        assert graph.facts_about("nobody") == []

    # -- entities and graph walks --------------------------------------------------------

    def test_find_entities_by_name_or_alias_ignoring_case(self, store: GraphStore) -> None:
        store.upsert_entities(
            [
                entity("asa", "Aspirin", type="Drug", aliases=["ASA", "Acetylsalicylic acid"]),
                entity("aspirin-band", "aspirin", type="Band", mentions=9),
                entity("ecole", "École Normale", aliases=["ENS", " "]),
            ]
        )

        def found(name: str, type: str | None = None) -> set[str]:
            return {e.id for e in store.find_entities(name, type=type)}

        assert found("ASPIRIN") == {"aspirin-band", "asa"}
        assert found("aspirin", type="Drug") == {"asa"}
        assert found("acetylsalicylic ACID") == {"asa"}
        assert found("ÉCOLE NORMALE") == {"ecole"}  # beyond ASCII
        assert found("ens") == {"ecole"}
        assert len(store.find_entities("aspirin", limit=1)) == 1
        assert store.find_entities("aspiri") == []  # equality, not prefix
        assert store.find_entities("") == []

    @pytest.mark.parametrize(
        ("seeds", "hops", "expected"),
        [
            (["a"], 1, {"f0", "f1"}),
            (["a"], 2, {"f0", "f1", "f2"}),
            (["b"], 1, {"f1", "f2"}),  # incoming edges count
            (["b"], 2, {"f0", "f1", "f2", "f3"}),
            (["e"], 2, {"f3", "f4"}),  # walking against edge direction
            (["a", "e"], 1, {"f0", "f1", "f4"}),
            (["a"], 9, {"f0", "f1", "f2", "f3", "f4"}),
            (["a"], 0, set()),
            (["nobody"], 2, set()),
            ([], 2, set()),
        ],
    )
    def test_neighbourhood(
        self, graph: GraphStore, seeds: list[str], hops: int, expected: set[str]
    ) -> None:
        got = graph.neighbourhood(seeds, hops=hops)
        assert ids(got) == expected
        assert len(got) == len(expected)  # no duplicates

    def test_neighbourhood_walks_only_facts_that_hold(self, graph: GraphStore) -> None:
        graph.retire_fact("f2", at=T1, reason="wrong")
        assert ids(graph.neighbourhood(["a"], hops=3)) == {"f0", "f1"}

    # -- search -----------------------------------------------------------------------------

    def test_chunks_of_sources_in_document_order_without_vectors(self, corpus: GraphStore) -> None:
        got = corpus.chunks_of(["s2", "s1", "s1", "missing"])
        assert [(c.source_id, c.id) for c in got] == [("s1", "c1"), ("s1", "c2"), ("s2", "c3")]
        assert all(c.embedding is None for c in got)
        assert corpus.chunks_of([]) == []

    def test_bm25_ranks_the_matching_chunk_first(self, corpus: GraphStore) -> None:
        hits = corpus.search_chunks_text("aspirin platelet")
        assert [c.id for c, _ in hits] == ["c2"]
        hits = corpus.search_chunks_text("quick fox dog")
        assert {c.id for c, _ in hits} == {"c1", "c3"}
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert corpus.search_chunks_text("FOXES")  # case-insensitive
        assert len(corpus.search_chunks_text("fox", k=1)) == 1
        assert corpus.search_chunks_text("zebra") == []

    def test_bm25_prefers_more_matching_terms(self, corpus: GraphStore) -> None:
        hits = corpus.search_chunks_text("lazy dog jumps")
        assert hits[0][0].id == "c1"
        assert hits[0][1] > hits[-1][1]

    @pytest.mark.parametrize("query", HOSTILE_QUERIES)
    def test_hostile_text_queries_do_not_break(self, corpus: GraphStore, query: str) -> None:
        hits = corpus.search_chunks_text(query)
        assert all(isinstance(c, Chunk) and isinstance(s, float) for c, s in hits)
        assert corpus.stats().chunks == 3

    @pytest.mark.parametrize("query", EMPTY_QUERIES)
    def test_queries_without_words_find_nothing(self, corpus: GraphStore, query: str) -> None:
        assert corpus.search_chunks_text(query) == []

    def test_operators_are_plain_words(self, corpus: GraphStore) -> None:
        assert [c.id for c, _ in corpus.search_chunks_text("NOT aspirin")] == ["c2"]
        assert [c.id for c, _ in corpus.search_chunks_text('"aspirin" AND "zebra"')] == ["c2"]

    def test_chunk_vector_search_ranks_by_cosine(self, corpus: GraphStore) -> None:
        hits = corpus.search_chunks_vector([2.0, 0.1, 0.0], k=3)
        assert [c.id for c, _ in hits] == ["c1", "c3", "c2"]
        assert hits[0][1] == pytest.approx(0.99875, abs=1e-4)
        assert -1.0 <= hits[-1][1] <= hits[1][1] <= hits[0][1] <= 1.0 + 1e-6
        assert len(corpus.search_chunks_vector([0.0, 1.0, 0.0], k=1)) == 1

    def test_vector_search_sees_new_writes(self, corpus: GraphStore) -> None:
        assert corpus.search_chunks_vector([0.0, 0.0, 1.0], k=1)[0][0].id != "c4"
        corpus.upsert_chunks(
            [Chunk(id="c4", source_id="s2", ordinal=1, text="z", embedding=[0, 0, 1])]
        )
        assert corpus.search_chunks_vector([0.0, 0.0, 1.0], k=1)[0][0].id == "c4"

    def test_entity_vector_search_with_type(self, store: GraphStore) -> None:
        store.upsert_entities(
            [
                entity("p1", type="Person", embedding=[1.0, 0.0]),
                entity("p2", type="Person", embedding=[0.6, 0.8]),
                entity("d1", type="Drug", embedding=[0.9, 0.1]),
                entity("none", type="Person"),
            ]
        )
        assert [e.id for e, _ in store.search_entities_vector([1.0, 0.0])] == ["p1", "d1", "p2"]
        hits = store.search_entities_vector([1.0, 0.0], type="Person")
        assert [e.id for e, _ in hits] == ["p1", "p2"]
        assert hits[1][1] == pytest.approx(0.6)
        assert store.search_entities_vector([1.0, 0.0], type="Org") == []
        assert len(store.search_entities_vector([1.0, 0.0], k=1)) == 1

    def test_vector_search_on_empty_store(self, store: GraphStore) -> None:
        assert store.search_chunks_vector([1.0, 0.0]) == []
        assert store.search_entities_vector([1.0, 0.0]) == []

    # -- forgetting, the change log, stats ---------------------------------------------------

    def test_delete_source_cascades(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity("a"), entity("b")])
        corpus.upsert_facts(
            [fact("only-s1", "a", "b"), fact("both", "b", "a"), fact("no-evidence", "a")]
        )
        corpus.add_evidence(
            [
                Evidence(fact_id="only-s1", source_id="s1", chunk_id="c1"),
                Evidence(fact_id="only-s1", source_id="s1", chunk_id="c2", quote="again"),
                Evidence(fact_id="both", source_id="s1", chunk_id="c2"),
                Evidence(fact_id="both", source_id="s2", chunk_id="c3"),
            ]
        )
        assert corpus.delete_source("s1") == 1
        assert corpus.get_source("s1") is None
        assert corpus.get_fact("only-s1") is None
        assert corpus.evidence_for("only-s1") == []
        assert [e.source_id for e in corpus.evidence_for("both")] == ["s2"]
        assert corpus.get_fact("no-evidence") is not None  # never had evidence from s1
        assert corpus.search_chunks_text("aspirin") == []  # its chunks left the text index
        assert {c.id for c, _ in corpus.search_chunks_vector([1.0, 0.0, 0.0])} == {"c3"}
        stats = corpus.stats()
        assert (stats.sources, stats.chunks, stats.facts, stats.evidence) == (1, 1, 2, 1)
        assert corpus.get_entity("a") is not None  # entities stay
        assert corpus.delete_source("s1") == 0

    def test_evidence_from_a_source_and_its_removal(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity("a")])
        corpus.upsert_facts([fact("f1", "a"), fact("f2", "a", predicate="other")])
        ev = [
            Evidence(fact_id="f1", source_id="s1", chunk_id="c1", quote="q1", extracted_at=T1),
            Evidence(fact_id="f2", source_id="s1", quote="q2", model="m", extracted_at=T2),
            Evidence(fact_id="f1", source_id="s2", chunk_id="c3", quote="q3", extracted_at=T0),
        ]
        corpus.add_evidence(ev)
        assert corpus.evidence_from("s1") == ev[:2]
        assert corpus.evidence_from("nope") == []
        before = len(corpus.changes(limit=10_000))
        changed = ev[0].model_copy(update={"agreement": 0.1})  # matched by key, not by value
        missing = ev[1].model_copy(update={"quote": "other"})
        assert corpus.remove_evidence([changed, missing, ev[1]]) == 2
        assert corpus.evidence_from("s1") == []
        assert corpus.evidence_for("f1") == [ev[2]]
        assert corpus.get_fact("f2") is not None  # facts stay, even without evidence
        log = corpus.changes(since=corpus.changes(limit=10_000)[before - 1].seq)
        assert sorted((c.op, c.kind, c.item_id) for c in log) == [
            ("remove", "evidence", "f1"),
            ("remove", "evidence", "f2"),
        ]
        assert log[0].payload["source_id"] == "s1"
        assert corpus.remove_evidence([]) == 0

    def test_change_log_is_append_only_and_ordered(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity("a"), entity("b")])
        corpus.upsert_facts([fact("f", "a", "b")])
        corpus.add_evidence([Evidence(fact_id="f", source_id="s1")])
        first = corpus.changes()
        corpus.retire_fact("f", at=T2, reason="because")
        corpus.delete_source("s1")
        log = corpus.changes()
        assert log[: len(first)] == first
        seqs = [c.seq for c in log]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(c.at.tzinfo is not None for c in log)
        kinds = [(c.op, c.kind, c.item_id) for c in log]
        assert ("upsert", "source", "s1") in kinds
        assert ("upsert", "chunk", "c1") in kinds
        assert ("upsert", "entity", "a") in kinds
        assert ("upsert", "fact", "f") in kinds
        assert ("add", "evidence", "f") in kinds
        assert ("delete", "source", "s1") in kinds
        assert ("delete", "fact", "f") in kinds  # left without evidence
        retire = next(c for c in log if c.op == "retire")
        assert (retire.kind, retire.item_id, retire.payload["reason"]) == ("fact", "f", "because")
        assert corpus.changes(since=seqs[2], limit=2) == log[3:5]
        assert corpus.changes(since=seqs[-1]) == []

    # -- scanning (copying a store) ----------------------------------------------------------

    @staticmethod
    def scan_all(store: GraphStore, kind: type[Record], limit: int) -> list[Record]:
        records, cursor = store.scan(kind, limit=limit)
        pages = 1
        while cursor:
            page, cursor = store.scan(kind, after=cursor, limit=limit)
            records += page
            pages += 1
            assert pages < 100, "scan does not advance"
        return records

    def test_scan_pages_through_every_record(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity(e, embedding=[1.0, 0.5]) for e in "abcde"])
        facts = [fact(f"f{i}", "a", "bcde"[i % 4], recorded_at=T1) for i in range(5)]
        corpus.upsert_facts(facts)
        evidence = [
            Evidence(fact_id=f"f{i}", source_id="s1", chunk_id="c1", quote=q)
            for i in range(3)
            for q in ("x", "y")
        ]
        corpus.add_evidence(evidence)
        for limit in (1, 2, 1000):
            sources = self.scan_all(corpus, Source, limit)
            assert sorted(s.id for s in sources) == ["s1", "s2"]
            assert sources[0] == corpus.get_source(sources[0].id)
            assert sorted(c.id for c in self.scan_all(corpus, Chunk, limit)) == ["c1", "c2", "c3"]
            entities = self.scan_all(corpus, Entity, limit)
            assert sorted(entities, key=lambda e: e.id) == [
                entity(e, embedding=[1.0, 0.5]) for e in "abcde"
            ]
            assert sorted(self.scan_all(corpus, Fact, limit), key=lambda f: f.id) == facts
            found = self.scan_all(corpus, Evidence, limit)
            key = attrgetter("fact_id", "quote")
            assert sorted(found, key=key) == sorted(evidence, key=key)

    def test_scan_of_an_empty_store(self, store: GraphStore) -> None:
        for kind in (Source, Chunk, Entity, Fact, Evidence):
            assert store.scan(kind) == ([], "")

    def test_scan_refuses_a_cursor_it_did_not_make(self, corpus: GraphStore) -> None:
        with pytest.raises(UsageError, match="not a scan cursor"):
            corpus.scan(Source, after="not a cursor")

    def test_stats_counts(self, corpus: GraphStore) -> None:
        corpus.upsert_entities([entity("a"), entity("b")])
        corpus.upsert_facts([fact("f1", "a", "b"), fact("f2", "b")])
        corpus.add_evidence([Evidence(fact_id="f1", source_id="s1")])
        corpus.retire_fact("f2", at=T1, reason="x")
        stats = corpus.stats()
        assert (stats.sources, stats.chunks, stats.entities) == (2, 3, 2)
        assert (stats.facts, stats.active_facts, stats.evidence) == (2, 1, 1)
        assert stats.changes == len(corpus.changes(limit=10_000)) > 0
        assert stats.schema_version >= 1

    # -- playbooks --------------------------------------------------------------------------

    def test_playbook_round_trip_with_embeddings_and_counters(self, store: GraphStore) -> None:
        assert store.get_playbook("finance") is None
        assert store.playbook_history("finance") == []
        first = saved_playbook(store)
        assert store.get_playbook("finance") == first.playbook
        with_vectors = embedded(first.playbook)
        store.save_playbook(Revision(playbook=with_vectors, entries=[]), expected_version=4)
        got = store.get_playbook("finance")
        assert got == with_vectors and got is not None
        assert got.get("str-00001") is not None and got.bullets[0].helpful == 3
        assert [b.reflection_id for b in got.bullets] == ["r1"] * 3
        assert store.playbook_history("finance") == first.entries
        assert store.list_playbooks() == ["finance"]

    def test_playbook_history_appends_and_reads_since(self, store: GraphStore) -> None:
        first = saved_playbook(store)
        second = playbook_batch(
            first.playbook,
            UpdateOp(id="str-00003", content="Quote the XBRL tag exactly.", reason="clearer"),
            RemoveOp(id="mis-00002"),
            TagOp(id="str-00003", tag="harmful"),
            at=T2,
        )
        store.save_playbook(second, expected_version=first.playbook.version)
        history = store.playbook_history("finance")
        assert history == [*first.entries, *second.entries]
        assert [e.seq for e in history] == list(range(1, 8))
        assert store.playbook_history("finance", since=4) == second.entries
        assert store.playbook_history("finance", since=7) == []
        assert history[4].reason == "clearer" and history[4].at == T2
        assert store.get_playbook("finance") == second.playbook

    def test_a_playbook_save_writes_only_the_bullets_its_entries_touch(
        self, store: GraphStore
    ) -> None:
        """An untouched bullet altered behind the entries' back proves its row was not
        rewritten: the store still holds it as first saved."""
        first = saved_playbook(store)
        later = playbook_batch(
            first.playbook, TagOp(id="str-00003", tag="helpful"), RemoveOp(id="mis-00002"), at=T2
        )
        kept, tagged = later.playbook.bullets
        assert kept.id == "str-00001" and kept == first.playbook.get("str-00001")
        behind = kept.model_copy(update={"content": "In no entry.", "helpful": 99})
        tampered = later.playbook.model_copy(update={"bullets": [behind, tagged]})
        store.save_playbook(
            later.model_copy(update={"playbook": tampered}), expected_version=first.playbook.version
        )
        got = store.get_playbook("finance")
        assert got == later.playbook and got is not None
        assert got.get("mis-00002") is None and got.get("str-00003") == tagged
        assert store.playbook_history("finance") == [*first.entries, *later.entries]

    def test_a_playbook_save_keeps_vectors_computed_for_untouched_bullets(
        self, store: GraphStore
    ) -> None:
        """Agents embed every bullet before a save; untouched ones whose stored row has no
        vector, or one of another length, are written too, or each save would embed them again."""
        first = saved_playbook(store)
        later = playbook_batch(first.playbook, TagOp(id="str-00003", tag="helpful"), at=T2)
        with_vectors = embedded(later.playbook)
        store.save_playbook(later.model_copy(update={"playbook": with_vectors}), expected_version=4)
        assert store.get_playbook("finance") == with_vectors
        again = playbook_batch(with_vectors, TagOp(id="str-00001", tag="harmful"), at=T2)
        other_dim = [
            b.model_copy(update={"embedding": [0.25, 0.5]}) for b in again.playbook.bullets
        ]
        resized = again.playbook.model_copy(update={"bullets": other_dim})
        store.save_playbook(again.model_copy(update={"playbook": resized}), expected_version=5)
        assert store.get_playbook("finance") == resized

    def test_playbook_second_writer_loses_without_a_trace(self, store: GraphStore) -> None:
        base = saved_playbook(store).playbook
        a = playbook_batch(base, AddOp(section="mistakes", content="Writer A's lesson."))
        b = playbook_batch(base, AddOp(section="mistakes", content="Writer B's lesson."))
        store.save_playbook(a, expected_version=base.version)
        with pytest.raises(PlaybookConflictError, match="version 5, not 4"):
            store.save_playbook(b, expected_version=base.version)
        assert store.get_playbook("finance") == a.playbook
        assert [e.seq for e in store.playbook_history("finance")] == [1, 2, 3, 4, 5]
        assert store.playbook_history("finance", since=4) == a.entries

    def test_playbook_creation_conflicts_both_ways(self, store: GraphStore) -> None:
        first = saved_playbook(store)
        with pytest.raises(PlaybookConflictError, match="already exists"):
            store.save_playbook(first, expected_version=0)
        other = first.model_copy(
            update={"playbook": first.playbook.model_copy(update={"name": "other"})}
        )
        with pytest.raises(PlaybookConflictError, match="version 0, not 4"):
            store.save_playbook(other, expected_version=4)
        assert store.list_playbooks() == ["finance"]
        assert len(store.playbook_history("finance")) == 4

    def test_an_empty_playbook_saved_at_version_0_can_grow(self, store: GraphStore) -> None:
        empty = Playbook(name="new", sections=["strategies"])
        store.save_playbook(Revision(playbook=empty, entries=[]), expected_version=0)
        assert store.get_playbook("new") == empty and store.list_playbooks() == ["new"]
        grown = playbook_batch(empty, AddOp(section="strategies", content="A first lesson."))
        store.save_playbook(grown, expected_version=0)
        assert store.get_playbook("new") == grown.playbook
        assert store.playbook_history("new") == grown.entries

    def test_playbook_entries_must_continue_the_history(self, store: GraphStore) -> None:
        first = saved_playbook(store)
        gap = playbook_batch(first.playbook, RemoveOp(id="str-00001"))
        with pytest.raises(UsageError, match="do not take playbook"):
            store.save_playbook(Revision(playbook=gap.playbook, entries=[]), expected_version=4)
        assert store.get_playbook("finance") == first.playbook
        assert len(store.playbook_history("finance")) == 4

    def test_playbook_names_are_listed_sorted(self, store: GraphStore) -> None:
        for name in ("support", "Finance", "agent/7", "finance"):
            saved_playbook(store, name)
        assert store.list_playbooks() == sorted(["support", "Finance", "agent/7", "finance"])
        assert store.get_playbook("FINANCE") is None

    def test_a_failed_transaction_leaves_the_previous_playbook(self, store: GraphStore) -> None:
        first = saved_playbook(store)
        later = playbook_batch(first.playbook, RemoveOp(id="str-00001"), RemoveOp(id="mis-00002"))
        with pytest.raises(RuntimeError), store.transaction():
            store.save_playbook(later, expected_version=4)
            raise RuntimeError("crash after the save, before the commit")
        assert store.get_playbook("finance") == first.playbook
        assert store.playbook_history("finance") == first.entries
        store.save_playbook(later, expected_version=4)  # the version was not taken
        assert store.get_playbook("finance") == later.playbook
