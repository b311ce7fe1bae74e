"""Retrieval as a library: RRF fusion, hybrid search over a real SQLite store, the graph walk,
and the evidence ledger's deterministic checks. The embedder is the hashing test double."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest

from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.models import Entity, Evidence, Fact, Source
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.retrieval.bridge import bridge_names, bridge_queries, name_forms
from evergraph.retrieval.graph_walk import (
    GraphOptions,
    graph_search,
    link_entities,
    personalised_pagerank,
)
from evergraph.retrieval.hybrid import HybridRetriever, Mode, rrf
from evergraph.retrieval.index import Passage, index_passages
from evergraph.retrieval.ledger import (
    Ledger,
    LedgerEntry,
    Verdict,
    answer_in,
    ground_quote,
    narrow_quote,
    relevance,
    restated,
)
from evergraph.retrieval.text import (
    answers_yes_no,
    compares,
    content_query,
    find_span,
    names,
    names_any,
    ngrams,
    normalize_answer,
)
from evergraph.retrieval.titles import TitleIndex, name_variants

EMBEDDER = HashingEmbedder(dim=256)
PASSAGES = [
    Passage("Inception", "Inception is a 2010 film directed by Christopher Nolan."),
    Passage("Christopher Nolan", "Nolan studied English literature at University College London."),
    Passage(
        "Oslo", "Oslo is the capital of Norway.", published_at=datetime(2030, 1, 1, tzinfo=UTC)
    ),
    Passage("Porto", "Porto is a coastal city in the north of Portugal."),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGraphStore]:
    with SQLiteGraphStore(tmp_path / "store.db") as s:
        index_passages(s, EMBEDDER, PASSAGES)
        yield s


def ids(*titles: str) -> list[str]:
    by_title = {p.title: p.chunk_id for p in PASSAGES}
    return [by_title[t] for t in titles]


# -- fusion -----------------------------------------------------------------------------------


def test_rrf_rewards_agreement_and_is_deterministic() -> None:
    fused = rrf({"a": ["x", "y", "z"], "b": ["y", "w"]}, k=60)
    assert [i for i, _ in fused] == ["y", "x", "w", "z"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    # equal scores: the better single rank first, then first seen
    assert [i for i, _ in rrf({"a": ["p", "q"], "b": ["q", "p"]})] == ["p", "q"]


def test_rrf_weights_and_duplicates() -> None:
    fused = dict(rrf({"a": ["x", "x", "y"], "b": ["y"]}, k=1, weights={"b": 0.0}))
    assert fused == {"x": pytest.approx(1 / 2), "y": pytest.approx(1 / 3)}  # x counted once
    assert rrf({}) == []


# -- hybrid search ----------------------------------------------------------------------------


def test_each_mode_finds_the_passage_that_shares_the_words(store: SQLiteGraphStore) -> None:
    retriever = HybridRetriever(store, EMBEDDER)
    for modes in ({Mode.BM25}, {Mode.DENSE}, set(Mode)):
        hits = retriever.search("Who directed the film Inception?", k=2, modes=modes)
        assert hits[0].chunk_id == ids("Inception")[0], modes
        assert set(hits[0].ranks) <= modes and hits[0].text.startswith("Inception\n")
    hybrid = retriever.search("Who directed the film Inception?", k=2)
    # the question names the Inception article; the graph found nothing
    assert hybrid[0].ranks == {Mode.BM25: 1, Mode.DENSE: 1, Mode.NAMED: 1}


def test_exclude_and_as_of_filter_chunks(store: SQLiteGraphStore) -> None:
    retriever = HybridRetriever(store, EMBEDDER)
    first = retriever.search("capital of Norway Oslo", k=1)
    assert [h.chunk_id for h in first] == ids("Oslo")
    rest = retriever.search("capital of Norway Oslo", k=1, exclude=ids("Oslo"))
    assert rest and rest[0].chunk_id != ids("Oslo")[0]
    then = retriever.search("capital of Norway Oslo", k=4, as_of=datetime(2029, 1, 1))
    assert ids("Oslo")[0] not in [h.chunk_id for h in then]  # published in 2030


def test_a_query_of_function_words_is_still_searched(store: SQLiteGraphStore) -> None:
    assert content_query("Who was he?") == "Who was he?"
    assert content_query("Who directed the film?") == "directed film"
    assert HybridRetriever(store, EMBEDDER).search("", k=3, modes={Mode.BM25}) == []


# -- graph walk -------------------------------------------------------------------------------


def add_graph(store: SQLiteGraphStore) -> None:
    """Inception -directed_by-> Nolan -studied_at-> UCL, with evidence in two chunks."""
    names = {"inc": "Inception", "nol": "Christopher Nolan", "ucl": "University College London"}
    vectors = EMBEDDER.embed(list(names.values()))
    store.upsert_entities(
        [
            Entity(id=i, name=n, embedding=v.tolist())
            for (i, n), v in zip(names.items(), vectors, strict=True)
        ]
    )
    inception, nolan = (p.chunk_id for p in PASSAGES[:2])
    store.upsert_facts(
        [
            Fact(
                id="f1", subject_id="inc", predicate="directed_by", object_id="nol", confidence=0.9
            ),
            Fact(
                id="f2", subject_id="nol", predicate="studied_at", object_id="ucl", confidence=0.8
            ),
        ]
    )
    store.add_evidence(
        [
            Evidence(
                fact_id="f1",
                source_id=PASSAGES[0].source_id,
                chunk_id=inception,
                quote="directed by Christopher Nolan",
            ),
            Evidence(
                fact_id="f2",
                source_id=PASSAGES[1].source_id,
                chunk_id=nolan,
                quote="Nolan studied English literature at University College London",
            ),
        ]
    )


def test_graph_walk_reaches_the_bridge_chunk_the_query_never_names(
    store: SQLiteGraphStore,
) -> None:
    add_graph(store)
    query = "Where did the director of Inception study?"
    vector = EMBEDDER.embed([query])[0].tolist()
    assert link_entities(store, query, vector, GraphOptions())["inc"] == 1.0
    hits = graph_search(store, query, vector, k=5)
    assert {h.chunk_id for h in hits} == set(ids("Inception", "Christopher Nolan"))
    nolan = next(h for h in hits if h.chunk_id == ids("Christopher Nolan")[0])
    assert nolan.fact_ids == ("f2",) and "University College London" in nolan.quotes[0]
    fused = HybridRetriever(store, EMBEDDER).search(query, k=4)
    assert Mode.GRAPH in next(h for h in fused if h.chunk_id == nolan.chunk_id).ranks
    # chunks only the graph found (their quotes stand for their text) are no links' source
    walked = HybridRetriever(store, EMBEDDER).search(query, k=2, modes={Mode.GRAPH, Mode.TITLES})
    assert [h.ranks[Mode.GRAPH] for h in walked] == [1, 2]


def test_graph_walk_on_a_text_only_store_finds_nothing(store: SQLiteGraphStore) -> None:
    query = "Where did the director of Inception study?"
    assert graph_search(store, query, EMBEDDER.embed([query])[0].tolist()) == []


def test_graph_walk_honours_as_of(store: SQLiteGraphStore) -> None:
    add_graph(store)
    store.upsert_facts(
        [
            Fact(
                id="f2",
                subject_id="nol",
                predicate="studied_at",
                object_id="ucl",
                confidence=0.8,
                valid_from=datetime(2040, 1, 1, tzinfo=UTC),
            )
        ]
    )
    query = "Inception"
    hits = graph_search(store, query, EMBEDDER.embed([query])[0].tolist(), as_of=datetime.now(UTC))
    assert [h.fact_ids for h in hits] == [("f1",)]


# -- ledger -----------------------------------------------------------------------------------


TEXT = (
    "Van Hook Township, Mountrail County, North Dakota\n"
    "Van Hook Township is a township in Mountrail County in the U.S. state of North Dakota. "
    "It was founded in 1901. Its seat is Stanley."
)
FIRST = "Van Hook Township is a township in Mountrail County in the U.S. state of North Dakota."
SEAT = "What is the seat of Mountrail County?"


def offer(
    ledger: Ledger,
    quote: str,
    answer: str,
    *,
    sub_question: str = SEAT,
    text: str = TEXT,
    given: Collection[str] = (),
    question: str = "",
) -> LedgerEntry | str:
    """A claim for hop 2 read from chunk c1."""
    return ledger.admit(
        hop=2,
        sub_question=sub_question,
        chunk_id="c1",
        source_id="s1",
        text=text,
        quote=quote,
        answer=answer,
        given=given,
        question=question,
    )


def test_ground_quote_returns_the_chunks_own_whole_sentences() -> None:
    assert ground_quote("It was founded in 1901.", TEXT) == "It was founded in 1901."
    assert ground_quote("in Mountrail County in the", TEXT) == FIRST  # a fragment: its sentence
    # a dropped word and a lower-cased letter still match; the title line is not taken along
    sloppy = "Van Hook Township is a township in Mountrail county in the U.S. state North Dakota"
    assert ground_quote(sloppy, TEXT) == FIRST
    assert ground_quote("It was founded by Vikings in the year 800.", TEXT) is None
    assert ground_quote(TEXT + " And it has a famous zoo with penguins.", TEXT) is None
    assert ground_quote("   ", TEXT) is None
    # a quote without the passage's parenthesis is the sentence that has it
    dated = "Helen Pitts Douglass (1838-1903) was an American suffragist. She wrote."
    quote = "Helen Pitts Douglass was an American suffragist"
    assert ground_quote(quote, dated) == dated.split(" She")[0]


def test_a_quote_the_reader_restated_stands_for_the_sentence_that_states_its_answer() -> None:
    ledger = Ledger()

    def admit(quote: str, answer: str) -> object:
        return offer(ledger, quote, answer, sub_question="Which county is Van Hook Township in?")

    entry = admit("Van Hook Township lies in Mountrail County", "Mountrail County")
    assert isinstance(entry, LedgerEntry) and entry.quote == FIRST
    assert restated("Van Hook Township lies in Ward County", "Ward County", TEXT) is None
    assert restated("Its county is Mountrail County", "Mountrail County", TEXT) is None  # 0 of 1
    assert restated("Van Hook Township is a township", "Yes", TEXT) is None
    assert admit("The township lies in Ward County", "Ward County") == (
        "quote not in the passage: 'The township lies in Ward County'"
    )


def test_a_name_the_question_writes_is_no_answer_unless_it_offers_a_choice() -> None:
    ledger = Ledger()
    text = "Empress Wang\nEmpress Wang was the wife of Yang Pu, whose father was Yang Xingmi."

    def admit(answer: str, sub_question: str, question: str) -> object:
        quote = text.split("\n")[1]
        given = {"yang pu"}
        return offer(
            ledger,
            quote,
            answer,
            sub_question=sub_question,
            text=text,
            given=given,
            question=question,
        )

    asked = "Who is the father of Empress Wang's husband?"
    assert admit("Empress Wang", "Who is the father of Yang Pu?", asked) == (
        "answer 'Empress Wang' is a name the question itself writes"
    )
    assert isinstance(admit("Yang Xingmi", "Who is the father of Yang Pu?", asked), LedgerEntry)
    choice = "Who was married first, Empress Wang or Yang Xingmi?"
    assert isinstance(admit("Empress Wang", "Whose wife was Empress Wang?", choice), LedgerEntry)


def test_find_span_is_exact_first_then_fuzzy_and_never_inside_the_needle() -> None:
    text = "The Crab Nebula, M1, lies in Taurus."
    assert find_span("crab   NEBULA", text, None) == (4, 15)
    assert find_span("Crab Nebla", text, None) is None  # exact only
    start, end = find_span("the crab nebla, m1", text, 85) or (0, 0)
    assert text[start:end].lower().startswith("the crab neb")
    assert find_span("Orion Nebula", text, 90) is None
    assert find_span(text + " It is bright.", text, 50) is None  # the text inside the needle
    assert find_span("  ", text, 50) is None


def test_a_long_quote_is_narrowed_to_the_sentence_that_states_the_answer() -> None:
    assert ground_quote(TEXT, TEXT) == TEXT
    assert narrow_quote(TEXT, "Stanley", max_chars=100) == "Its seat is Stanley."
    assert narrow_quote("Its seat is Stanley.", "Stanley") == "Its seat is Stanley."
    assert narrow_quote(TEXT, "Bismarck") is None


def test_answer_must_be_in_its_quote_as_a_phrase() -> None:
    assert answer_in("Mountrail County", "a township in Mountrail County, North Dakota")
    assert answer_in("the Mountrail county", "a township in Mountrail County")
    assert answer_in("Mountrail Countys", "a township in Mountrail County")  # near spelling
    assert answer_in("yes", "anything")  # a judgement, not a span
    assert not answer_in("1910", "It was founded in 1901.")
    assert not answer_in("UK", "Ukraine is large")
    # words of the quote, but not a phrase of it: not stated
    assert not answer_in(
        "Matt Lynch was a judge in Ohio", "Matt Lynch (born 1951) is a Judge in Ohio"
    )
    assert not answer_in("", TEXT)


def test_ledger_resolves_a_hop_by_majority_and_marks_contradictions() -> None:
    ledger = Ledger()

    def add(answer: str, chunk_id: str) -> LedgerEntry:
        return ledger.add(
            hop=1, sub_question="Where?", answer=answer, source_id="s", chunk_id=chunk_id, quote="q"
        )

    e1, e2 = add("Mountrail County", "c1"), add("Ward County", "c2")
    assert (e1.id, e2.id) == ("E1", "E2") and e1.claim == "Where? -> Mountrail County"
    tie = ledger.resolve(1)
    assert tie.answer is None and tie.contested
    assert {e.verdict for e in ledger.entries} == {Verdict.CONTRADICTED}
    add("mountrail county.", "c3")
    res = ledger.resolve(1)
    assert res.answer == "Mountrail County" and res.supporting == ("E1", "E3")
    assert res.contradicting == ("E2",) and not res.contested
    assert ledger.get("E2") is not None and ledger.get("E2").verdict is Verdict.CONTRADICTED  # type: ignore[union-attr]
    assert ledger.has(1, "c1", "mountrail county") and not ledger.has(2, "c1", "Mountrail County")
    assert ledger.resolve(2).answer is None and not ledger.resolve(2).contested
    assert ledger.chunk_ids() == {"c1", "c2", "c3"}


def test_a_tie_goes_to_the_answer_whose_quote_speaks_of_the_sub_question() -> None:
    ledger = Ledger()
    asked = "Which county is Van Hook Township in?"
    about = "Van Hook Township is a township in Mountrail County in North Dakota."
    elsewhere = "Liberty Township is one of the twelve townships of Van Wert County, Ohio."
    for answer, quote in [("Van Wert County", elsewhere), ("Mountrail County", about)]:
        ledger.add(
            hop=1, sub_question=asked, answer=answer, source_id="s", chunk_id=answer, quote=quote
        )

    res = ledger.resolve(1)

    assert res.answer == "Mountrail County" and res.contradicting == ("E1",)
    assert [relevance(asked, e.answer, e.quote) for e in ledger.entries] == [1, 3]


def test_text_helpers() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    grams = list(ngrams("director of the University of Oxford", max_n=4))
    assert "University of Oxford" in grams and "of Oxford" not in grams
    assert grams.index("University of Oxford") < grams.index("Oxford")
    assert answers_yes_no("Were Scott Derrickson and Ed Wood of the same nationality?")
    assert not answers_yes_no("Is Kyoto or Osaka larger?")  # a choice between names
    assert not answers_yes_no("Who was born first?") and not answers_yes_no("")
    assert compares("Is Kyoto or Osaka larger?")
    assert compares("Are Random House Tower and 888 7th Avenue both used for real estate?")
    assert not compares("Was the director of Jaws born in Ohio?")  # one name: a second hop
    assert not compares("Who is the spouse of the director of Shrek 2?")
    assert names("Who played Susan Walker in Miracle on 34th Street?") == [
        "Susan Walker",
        "Miracle",
        "34th Street",
    ]
    assert names("When was the sibling of Alice de Lusignan, Countess of Surrey crowned?") == [
        "Alice de Lusignan",
        "Countess",
        "Surrey",
    ]
    assert names("Who is Ludwig van? Ludwig van Beethoven wrote") == [
        "Ludwig",
        "Ludwig van Beethoven",
    ]
    assert names("George VI\nGeorge VI was crowned") == ["George VI", "George VI"]  # a title line
    assert names_any("Natalie Wood played Susan Walker.", ["Susan Walker"])
    assert not names_any("Alice de Lencquesaing is an actress", names("Alice de Lusignan"))
    assert not names_any("a walker in Susan's street", ["Susan Walker", "Street"])


def test_personalised_pagerank_agrees_with_networkx() -> None:
    edges = [("a", "b", 1.0), ("b", "c", 0.5), ("c", "a", 0.2), ("c", "d", 1.0), ("a", "b", 0.5)]
    seeds = {"a": 1.0, "d": 0.5}
    graph = nx.Graph()
    for x, y, w in edges:
        graph.add_edge(x, y, weight=graph.get_edge_data(x, y, {"weight": 0.0})["weight"] + w)
    expected = nx.pagerank(graph, alpha=0.5, personalization=seeds, weight="weight", tol=1e-12)
    got = personalised_pagerank(edges, seeds, damping=0.5)
    assert got == pytest.approx(expected, abs=1e-8)
    assert personalised_pagerank([], {"x": 1.0}, damping=0.5) == {"x": 1.0}  # no edges: restart


def test_ledger_admits_only_claims_that_hold() -> None:
    ledger = Ledger()

    def admit(quote: str, answer: str, given: frozenset[str] = frozenset()) -> object:
        return offer(ledger, quote, answer, given=given)

    entry = admit("seat is Stanley", "Stanley")
    assert isinstance(entry, LedgerEntry) and entry.quote == "Its seat is Stanley."
    assert (
        admit("seat is Stanley", "stanley") == "answer 'stanley' already recorded from this chunk"
    )
    assert admit("seat is Bismarck", "Bismarck") == "quote not in the passage: 'seat is Bismarck'"
    assert admit("seat is Stanley", "Minot") == "answer 'Minot' not in its quote"
    echo = admit("in Mountrail County", "Mountrail County", frozenset({"mountrail county"}))
    assert echo == "answer 'Mountrail County' repeats an earlier hop's answer"
    assert (
        admit("seat is Stanley", "Yes")
        == "'Yes' does not answer a question that asks for a name or number"
    )
    ward = "What is the seat of Ward County?"  # hop 1 said Ward County
    other = offer(ledger, "seat is Stanley", "Stanley", sub_question=ward, given={"ward county"})
    assert other == "the passage names none of ['Ward County', 'ward county'], which it asks about"
    elsewhere = admit("founded in 1901", "1901")  # true, but not about a seat or the county
    assert elsewhere == "quote 'It was founded in 1901.' shares no word with the question"
    copied = admit(FIRST, FIRST)  # the passage's sentence as its own answer
    assert copied == "answer of 16 words is a passage, not an answer"
    assert [e.id for e in ledger.entries] == ["E1"]


# -- title links ------------------------------------------------------------------------------


def test_a_title_answers_to_its_name_without_disambiguation() -> None:
    assert name_variants("Capote (film)") == {("Capote", "film"), ("Capote",)}
    assert ("Van", "Hook", "Township") in name_variants("Van Hook Township, Mountrail County")
    assert name_variants("J. M. Barrie") == {("J", "M", "Barrie")}
    assert name_variants("The") == set() and name_variants("") == set()
    assert name_variants("A title far too long to be the name of any one thing") == set()


def test_title_mentions_are_case_sensitive_longest_first_in_order() -> None:
    index = TitleIndex.of(
        [
            Source(id="s1", title="Mark Bowden", text="."),
            Source(id="s2", title="Mark", text="."),
            Source(id="s3", title="Capote (film)", text="."),
            Source(id="s4", title="Capote (book)", text="."),
        ]
    )
    found = index.mentions("Capote and the mark of Mark Bowden, not mark bowden; Mark.")
    assert found == [("Capote", {"s3", "s4"}), ("Mark Bowden", {"s1"}), ("Mark", {"s2"})]
    assert index.titled("Capote") == set() and index.titled("Capote (film)") == {"s3"}
    assert index.titled("Mark  Bowden") == {"s1"}


@contextmanager
def searching(
    path: Path, passages: list[Passage]
) -> Iterator[tuple[HybridRetriever, dict[str, str]]]:
    """A retriever over a new store holding `passages`, and their chunk ids by title."""
    with SQLiteGraphStore(path) as store:
        index_passages(store, EMBEDDER, passages)
        yield HybridRetriever(store, EMBEDDER), {p.title: p.chunk_id for p in passages}


BANDS = [
    Passage("Third Eye Blind (album)", "Third Eye Blind is the debut album of Third Eye Blind."),
    Passage("Third Eye Blind", "Third Eye Blind is an American rock band formed in 1993."),
    Passage("Sick Puppies", "Sick Puppies is an Australian band with five albums."),
    *(Passage(f"Album {n}", f"Album {n} by an American band, of its albums.") for n in range(8)),
]


def test_the_documents_a_question_names_get_a_ranking_of_their_own(tmp_path: Path) -> None:
    question = "Which band released more albums, Sick Puppies or Third Eye Blind?"
    with searching(tmp_path / "bands.db", BANDS) as (retriever, chunk):
        hits = retriever.search(question, k=5, modes={Mode.BM25, Mode.NAMED})
        named = {h.chunk_id: h.ranks.get(Mode.NAMED) for h in hits}
        # in the question's order; the band's own article, not the album that shares its name
        assert named[chunk["Sick Puppies"]] == 1 and named[chunk["Third Eye Blind"]] == 2
        assert named.get(chunk["Third Eye Blind (album)"]) is None
        # found by BM25 already, they keep the vote: both lead the fused ranking
        assert {h.chunk_id for h in hits[:2]} == {chunk["Sick Puppies"], chunk["Third Eye Blind"]}
        without = retriever.search(question, k=5, modes={Mode.BM25, Mode.TITLES})
        assert all(Mode.NAMED not in h.ranks for h in without)


BRIDGE = [
    Passage("Killing Pablo", "Killing Pablo is a 2001 book by Mark Bowden about Colombia."),
    Passage("Mark Bowden", "Bowden was raised in Joppa, Maryland, and studied at Loyola."),
    *(
        Passage(f"Pablo {n}", f"Pablo {n} was a writer born in a town of Colombia in 19{n}.")
        for n in range(10, 20)
    ),
]


def test_title_links_reach_the_document_the_first_passage_names(tmp_path: Path) -> None:
    question = "Where was the author of Killing Pablo born?"
    with searching(tmp_path / "bridge.db", BRIDGE) as (retriever, chunk):
        plain = retriever.search(question, k=3, modes={Mode.BM25})
        assert chunk["Mark Bowden"] not in [h.chunk_id for h in plain]  # shares no word
        linked = retriever.search(question, k=3, modes={Mode.BM25, Mode.NAMED, Mode.TITLES})
        ranks = {h.chunk_id: h.ranks for h in linked}
        assert ranks[chunk["Mark Bowden"]] == {Mode.TITLES: 1}
        assert linked[0].chunk_id == chunk["Killing Pablo"]
        assert retriever.search(question, k=3, as_of=datetime(1999, 1, 1)) == []  # filtered too


SHREK = "Who is the spouse of the actress who played the fairy godmother in Shrek 2?"
FILM = (
    "Andrew Adamson directed Shrek 2 for DreamWorks. "
    "The fairy godmother was played by Jennifer Saunders."
)


def test_the_bridge_is_guessed_from_the_sentence_that_answers_the_question() -> None:
    other = "Antonio Banderas voiced Puss in Boots in Shrek 2."
    assert bridge_names(SHREK, [FILM, other], limit=3) == [
        "Jennifer Saunders",  # in the sentence sharing fairy, godmother, played
        "Andrew Adamson",  # "Shrek 2" is said by the question, so it is no guess
        "DreamWorks",
    ]
    assert bridge_names(SHREK, [FILM, other], limit=1) == ["Jennifer Saunders"]
    assert bridge_names(SHREK, [], limit=3) == []
    # what the question asks of the bridge, without what the first passage answers
    assert bridge_queries(["Jennifer Saunders"], SHREK, [FILM]) == [
        "Jennifer Saunders spouse actress"
    ]


def test_dates_sentence_openers_and_demonyms_are_no_bridge_guesses() -> None:
    grit = (
        "Directed by Ethan Coen, True Grit is a 2010 American Revisionist Western. "
        "Released on December 22, the film stars the American actor Jeff Bridges. "
        "Water scenes were shot in Texas, where the water was cold."
    )
    guesses = bridge_names("Who did the star of True Grit play?", [grit], limit=10)
    assert guesses == [
        "Ethan Coen",
        "American Revisionist Western",  # without its year
        "Jeff Bridges",
        "Texas",
    ]  # not "Directed" (opens a sentence), "December 22", "American" (before "actor"),
    # "Water" (the passage writes "water"), nor "True Grit" (the question says it)


def test_a_guessed_name_is_also_found_without_its_title_or_kind() -> None:
    passages = [
        "King Henry III was crowned at Westminster Abbey.",
        "Bansaan is an island in the sea off Bohol Island, a province of the Philippines.",
    ]
    assert name_forms(["King Henry III", "Bohol Island", "Madonna"], passages) == [
        ["King Henry III", "Henry III", "King Henry"],
        ["Bohol Island", "Bohol"],  # not "Island"
        ["Madonna"],
    ]


def test_a_bridge_ranking_reaches_the_passage_that_writes_the_guessed_name(
    tmp_path: Path,
) -> None:
    passages = [
        Passage("Shrek 2", FILM),
        Passage("Mirrorball", "Mirrorball is a pilot with Jennifer Saunders and her spouse."),
        *(
            Passage(f"Fairy {n}", f"Fairy godmother {n}, played by an actress and spouse in Shrek.")
            for n in range(3, 9)
        ),
    ]
    with searching(tmp_path / "shrek.db", passages) as (retriever, chunk):
        plain = retriever.search(SHREK, k=4, modes={Mode.BM25, Mode.DENSE})
        assert chunk["Mirrorball"] not in [h.chunk_id for h in plain]
        bridged = retriever.search(SHREK, k=4, modes={Mode.BM25, Mode.DENSE, Mode.BRIDGE})
        assert [h.chunk_id for h in bridged[:3]] == [h.chunk_id for h in plain[:3]]  # kept
        assert bridged[3].chunk_id == chunk["Mirrorball"]
        assert bridged[3].ranks[Mode.BRIDGE] == 1  # BM25 and dense rank it 8th of 8
        assert bridged[3].score > 0 and [h.score for h in bridged] == sorted(
            (h.score for h in bridged), reverse=True
        )  # it would outscore the hits kept above it: capped at theirs
        choice = "Is the fairy godmother in Shrek 2 or the one in Cinderella older?"
        compared = retriever.search(choice, k=8, modes={Mode.BM25, Mode.DENSE, Mode.BRIDGE})
        assert compared and not any(Mode.BRIDGE in h.ranks for h in compared)  # no second hop
        late = retriever.search(SHREK, k=4, modes={Mode.BRIDGE}, as_of=datetime(1999, 1, 1))
        assert late == []
