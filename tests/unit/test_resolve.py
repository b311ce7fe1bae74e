"""Entity resolution (exact, alias, fuzzy, embedding; within type), merges and un-merges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evergraph.errors import UsageError
from evergraph.graph.candidates import Mention
from evergraph.graph.ids import entity_id
from evergraph.graph.models import Entity, FactStatus
from evergraph.graph.names import NameIndex, normalise, similarity, vetoed
from evergraph.graph.resolve import Resolver, ResolveSettings
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.graph.unmerge import unmerge

from .graph_docs import EMBEDDER, Claim, Doc, entity, ingest, objects, year

NOW = year(2030)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "graph.db") as s:
        yield s


def stored(store: SQLiteGraphStore, name: str, type: str = "Thing", aliases: list[str] = []) -> str:  # noqa: B006
    [vector] = EMBEDDER.embed([name])
    e = Entity(
        id=entity_id(type, name), name=name, type=type, aliases=aliases, embedding=vector.tolist()
    )
    store.upsert_entities([e])
    return e.id


def resolve(
    resolver: Resolver, *mentions: Mention, source: str = "s1"
) -> tuple[list[str], Resolver]:
    r = resolver.resolve(list(mentions), source_id=source, seen=year(2020), now=NOW)
    resolver.store.upsert_entities(list(r.entities.values()))
    return [r.id_of(m) for m in mentions], resolver


# -- names ------------------------------------------------------------------------------------


def test_normalise_folds_case_accents_and_punctuation() -> None:
    assert normalise("  São-Paulo, F.C. ") == "sao paulo f c"
    assert normalise("Ünïcode_and  spaces") == "unicode and spaces"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Type 1 diabetes", "Type 2 diabetes"),
        ("SV Werder Bremen", "SV Werder Bremen II"),
        ("C. Dickinson", "M. Dickinson"),
        ("supervised learning", "unsupervised learning"),
        ("symmetric TSP", "asymmetric TSP"),
        ("Oliver Hahn", "Oliver Zahn"),
        ("APT-based classifier", "MPT-based classifier"),
    ],
)
def test_vetoes_keep_look_alikes_apart(a: str, b: str) -> None:
    assert vetoed(normalise(a), normalise(b))
    assert similarity(normalise(a), normalise(b)) == 0.0


def test_initials_do_not_vanish_from_a_fuzzy_score() -> None:
    assert not vetoed("s a eales", "s peale")
    assert similarity("s a eales", "s peale") < ResolveSettings().fuzzy_threshold


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Paul Kupperberg", "Paul Kuperberg"),
        ("Sarah Shandera", "Sarah E. Shandera"),
        ("convolutional neural network", "convolutional neural networks"),
        ("CNN", "CNNs"),
        ("U.S.A.", "USA"),
        ("Germany", "Grmany"),
        ("India", "Indai"),
    ],
)
def test_variants_score_above_the_default_threshold(a: str, b: str) -> None:
    assert similarity(normalise(a), normalise(b)) >= ResolveSettings().fuzzy_threshold


def test_name_index_finds_the_best_match_that_no_veto_rules_out() -> None:
    index = NameIndex()
    index.add("Type 2 diabetes", "t2")
    index.add("Type 1 diabetes", "t1")
    index.add("type 1 diabetes", "again")  # the same name once
    assert len(index) == 2
    assert index.best("Type 1 diabetis", 90) == ("t1", pytest.approx(97.3, abs=0.1))
    assert index.best("Type 3 diabetes", 90) is None
    assert index.best("type-1 Diabetes", 90) == ("t1", 100.0)
    assert index.best("???", 90) is None


# -- the steps ----------------------------------------------------------------------------------


def test_exact_name_and_alias_matches_within_type(store: SQLiteGraphStore) -> None:
    drug = stored(store, "Aspirin", "Drug", ["ASA"])
    band = stored(store, "Aspirin", "Band")
    ids, _ = resolve(
        Resolver(store, EMBEDDER),
        Mention(name="ASPIRIN", type="Drug"),
        Mention(name="asa", type="Drug"),
        Mention(name="aspirin", type="Band"),
        Mention(name="Aspirin", type="Person"),
    )
    assert ids[:3] == [drug, drug, band]
    assert ids[3] not in (drug, band)
    assert store.get_entity(drug).merges == []  # exact matches are no merges


def test_an_alias_match_adds_the_name_and_records_a_merge(store: SQLiteGraphStore) -> None:
    drug = stored(store, "Aspirin", "Drug")
    mention = Mention(name="Acetylsalicylic acid", type="Drug", aliases=["aspirin", "ASA"])
    ids, _ = resolve(Resolver(store, EMBEDDER), mention)
    assert ids == [drug]
    e = store.get_entity(drug)
    assert e is not None and e.aliases == ["Acetylsalicylic acid", "ASA"]
    (merge,) = e.merges
    assert (merge.name, merge.added, merge.rule, merge.source_id) == (
        "Acetylsalicylic acid",
        ["Acetylsalicylic acid", "ASA"],
        "alias",
        "s1",
    )
    assert [x.id for x in store.find_entities("ASA")] == [drug]


def test_fuzzy_names_merge_and_look_alikes_do_not(store: SQLiteGraphStore) -> None:
    obama = stored(store, "Barack Obama", "Person")
    t1 = stored(store, "Type 1 diabetes", "Disease")
    resolver = Resolver(store, EMBEDDER)
    ids, _ = resolve(
        resolver,
        Mention(name="Barak Obama", type="Person"),
        Mention(name="Type 2 diabetes", type="Disease"),
        Mention(name="Barack Obama", type="Disease"),  # same name, other type
    )
    assert ids[0] == obama and ids[1] != t1 and ids[2] != obama
    (merge,) = store.get_entity(obama).merges  # type: ignore[union-attr]
    assert merge.rule == "fuzzy" and merge.score >= 96
    strict = Resolver(store, EMBEDDER, ResolveSettings(fuzzy_threshold=99.5))
    ids, _ = resolve(strict, Mention(name="Barack Obamma", type="Person"))
    assert ids[0] != obama


def test_embedding_similarity_merges_what_spelling_does_not(store: SQLiteGraphStore) -> None:
    heart = stored(store, "heart attack acute", "Disease")
    ids, _ = resolve(Resolver(store, EMBEDDER), Mention(name="acute heart attack", type="Disease"))
    assert ids == [heart]  # the hashing embedder sees the same words
    (merge,) = store.get_entity(heart).merges  # type: ignore[union-attr]
    assert merge.rule == "embedding" and merge.score == pytest.approx(1.0)
    off = Resolver(store, EMBEDDER, ResolveSettings(embedding_threshold=1.01))
    ids, _ = resolve(off, Mention(name="attack heart acute", type="Disease"))
    assert ids != [heart]


def test_embedding_merges_respect_the_vetoes(store: SQLiteGraphStore) -> None:
    stored(store, "learning supervised", "Method")
    ids, _ = resolve(
        Resolver(store, EMBEDDER), Mention(name="unsupervised learning", type="Method")
    )
    assert ids[0] != entity_id("Method", "learning supervised")


def test_a_document_resolves_each_name_once(
    store: SQLiteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = Resolver(store, EMBEDDER)
    lookups: list[str] = []
    find = store.find_entities
    monkeypatch.setattr(
        store, "find_entities", lambda name, **kw: lookups.append(name) or find(name, **kw)
    )
    mentions = [Mention(name="Acme Corp"), Mention(name="acme corp"), Mention(name="Acme Corp.")]
    r = resolver.resolve(mentions, source_id="s1", seen=year(2020), now=NOW)
    assert len(set(r.ids.values())) == 1 and r.created == 1 and r.merged == 1
    assert lookups == []  # no query per name: the name index loaded once answers
    (e,) = r.entities.values()
    assert (e.name, e.aliases, e.mentions) == ("Acme Corp", ["Acme Corp."], 1)
    store.upsert_entities([e])
    lookups.clear()
    resolver.resolve(mentions, source_id="s2", seen=year(2021), now=NOW)
    assert lookups == []  # a later document: the names are known


def test_resolution_is_recorded_through_documents(store: SQLiteGraphStore) -> None:
    resolver = Resolver(store, EMBEDDER)
    ingest(store, Doc([Claim("Barack Obama", "born_in", "Hawaii")], year(2008)), resolver=resolver)
    report = ingest(
        store, Doc([Claim("Barak Obama", "visited", "Paris")], year(2009)), resolver=resolver
    )
    assert (report.merges, report.entities_created) == (1, 1)
    obama = entity(store, "Barack Obama")
    assert obama.aliases == ["Barak Obama"] and obama.mentions == 2
    assert objects(store, store.facts_about(obama.id)) == ["Hawaii", "Paris"]


# -- un-merging --------------------------------------------------------------------------------


def test_unmerge_splits_the_name_off_with_its_facts(store: SQLiteGraphStore) -> None:
    resolver = Resolver(store, EMBEDDER)
    ingest(store, Doc([Claim("Barack Obama", "born_in", "Hawaii")], year(2008)), resolver=resolver)
    ingest(store, Doc([Claim("Barak Obama", "visited", "Paris")], year(2009)), resolver=resolver)
    both = Doc(
        [
            Claim("Barak Obama", "met", "Merkel", quote="Barak Obama met Merkel."),
            Claim("Barack Obama", "met", "Merkel", quote="Barack Obama met Merkel."),
        ],
        year(2010),
    )
    ingest(store, both, resolver=resolver)
    obama = entity(store, "Barack Obama")
    (met,) = store.facts_about(obama.id, predicate="met")
    assert met.support == 1 and len(store.evidence_for(met.id)) == 2

    done = unmerge(store, EMBEDDER, obama.id, "barak obama", now=NOW)
    resolver.forget()
    split = done.entity
    assert (split.name, split.type, split.aliases) == ("Barak Obama", "Thing", [])
    assert (done.facts_moved, done.evidence_moved, done.facts_retired) == (2, 2, 1)
    assert (split.first_seen, split.last_seen, split.mentions) == (year(2009), year(2010), 2)
    after = store.get_entity(obama.id)
    assert after is not None and after.aliases == [] and after.merges[0].undone_at == NOW
    assert objects(store, store.facts_about(obama.id)) == ["Hawaii", "Merkel"]
    assert objects(store, store.facts_about(split.id)) == ["Merkel", "Paris"]
    (old_visit,) = [
        f for f in store.facts_about(obama.id, history=True) if f.predicate == "visited"
    ]
    assert old_visit.status is FactStatus.SUPERSEDED and old_visit.retire_reason.startswith(
        "unmerged"
    )
    (met_split,) = store.facts_about(split.id, predicate="met")
    assert [e.quote for e in store.evidence_for(met_split.id)] == ["Barak Obama met Merkel."]
    (met,) = store.facts_about(obama.id, predicate="met")
    assert [e.quote for e in store.evidence_for(met.id)] == ["Barack Obama met Merkel."]

    report = ingest(
        store, Doc([Claim("Barak Obama", "visited", "Rome")], year(2011)), resolver=resolver
    )
    assert report.merges == 0
    assert objects(store, store.facts_about(split.id, predicate="visited")) == ["Paris", "Rome"]
    with pytest.raises(UsageError, match="was not merged"):
        unmerge(store, EMBEDDER, obama.id, "Barak Obama")
    with pytest.raises(UsageError, match="no entity"):
        unmerge(store, EMBEDDER, "nope", "Barak Obama")


def test_an_entity_stored_after_the_index_loaded_is_matched_not_overwritten(
    store: SQLiteGraphStore,
) -> None:
    resolver = Resolver(store, EMBEDDER)
    resolve(resolver, Mention(name="Vega"))  # loads the name index
    eid = stored(store, "Altair", aliases=["Alpha Aquilae"])  # another writer
    ids, _ = resolve(resolver, Mention(name="Altair"), source="s2")
    assert ids == [eid]
    found = store.get_entity(eid)
    assert found is not None and found.aliases == ["Alpha Aquilae"] and found.merges == []
