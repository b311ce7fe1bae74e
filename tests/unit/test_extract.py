"""The extractor's rules with a scripted LLM: agreement, filters, cap, rejections, one request."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from langgraph.graph import END, START, StateGraph

from evergraph.agents.extract import (
    CHUNKS_FAILED,
    SAMPLES_CUT_OFF,
    SAMPLES_INVALID,
    SAMPLES_SALVAGED,
    ExtractOptions,
    Extractor,
    ExtractState,
    triples_rejected,
)
from evergraph.agents.extract_rules import (
    ChunkOut,
    Reason,
    Rules,
    canonical_predicate,
    judge,
    locate,
    output_model,
)
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.models import Chunk
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.llm.cache import RawChoice
from evergraph.llm.testing import ScriptedLLM

R = TypeVar("R")
TEXT = (
    "The Hubble Space Telescope observed the galaxy M87 in 1998. "
    "M87 hosts a supermassive black hole with a mass of 6.5 billion solar masses."
)
CHUNK = Chunk(id="c1", source_id="s1", ordinal=0, text=TEXT)
SCHEMA = GraphSchema(
    entity_types=["Instrument", "Object"],
    relations=[
        RelationType(name="observed", domain="Instrument", range="Object"),
        RelationType(name="hosts", domain="Object", range="Object"),
        RelationType(name="mass", domain="Object", range="literal"),
    ],
)
HST = {"name": "Hubble Space Telescope", "type": "Instrument"}
M87 = {"name": "M87", "type": "Object"}
BH = {"name": "supermassive black hole", "type": "Object"}
OBSERVED = {
    "subject": "Hubble Space Telescope",
    "predicate": "observed",
    "object": "M87",
    "quote": "The Hubble Space Telescope observed the galaxy M87",
}
HOSTS = {
    "subject": "m87",
    "predicate": "Hosts",
    "object": "Supermassive  black hole",
    "quote": "M87 hosts a supermassive black hole",
}


def sample(*relations: dict[str, str], entities: list[dict[str, str]] | None = None) -> str:
    out = ChunkOut.model_validate(
        {"entities": [HST, M87, BH] if entities is None else entities, "relations": relations}
    )
    return out.model_dump_json()


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def extract(script: list[Any], *, n: int = 5, schema: GraphSchema = SCHEMA) -> DocumentExtraction:
    llm = ScriptedLLM(script)
    extractor = Extractor(llm, schema, ExtractOptions(samples=n))
    result = run(extractor.document("s1", [CHUNK]))
    assert llm.remaining == 0
    return result


def by_predicate(result: DocumentExtraction) -> dict[str, float]:
    return {f.predicate: f.agreement for f in result.facts}


def test_agreement_is_votes_over_samples_requested_and_low_agreement_is_dropped() -> None:
    result = extract(
        [
            sample(OBSERVED, HOSTS),
            sample(OBSERVED, HOSTS),
            sample(OBSERVED, OBSERVED),  # one vote per sample, however often it repeats
            sample(OBSERVED),
            sample(),
        ]
    )
    assert by_predicate(result) == {"observed": 0.8, "hosts": 0.4}
    assert result.samples == 5 and result.rejected == {}

    single = extract([sample(OBSERVED, HOSTS), sample(OBSERVED), sample(), sample(), sample()])
    assert by_predicate(single) == {"observed": 0.4}
    assert single.rejected == {Reason.AGREEMENT: 1}


def test_confidence_is_agreement_capped_below_one() -> None:
    result = extract([sample(OBSERVED)] * 5)
    (fact,) = result.facts
    assert fact.agreement == 1.0 and fact.confidence == 0.95
    llm = ScriptedLLM([sample(OBSERVED)] * 4)
    options = ExtractOptions(samples=4, rules=Rules(min_agreement=0.75, confidence_cap=0.9))
    strict = run(Extractor(llm, SCHEMA, options).document("s1", [CHUNK]))
    assert [f.confidence for f in strict.facts] == [0.9]


def test_names_and_predicates_are_normalised_and_stored_in_the_texts_words() -> None:
    result = extract([sample(HOSTS)] * 2 + [sample()] * 3)
    (fact,) = result.facts
    assert fact.predicate == "hosts"
    assert fact.subject.name == "M87" and fact.subject.type == "Object"
    assert fact.object is not None and fact.object.name == "supermassive black hole"
    assert fact.quote == "M87 hosts a supermassive black hole" and fact.chunk_id == "c1"
    assert canonical_predicate("orbitalPeriod", GraphSchema()) == "orbital_period"
    assert canonical_predicate("Is Part Of", GraphSchema()) == "is_part_of"


def test_a_literal_object_per_the_schema_range() -> None:
    mass = {
        "subject": "black hole",
        "predicate": "mass",
        "object": "6.5 billion solar masses",
        "quote": "a mass of 6.5 billion solar masses",
    }
    result = extract([sample(mass)] * 5)
    (fact,) = result.facts
    assert fact.object is None and fact.object_value == "6.5 billion solar masses"


def test_quotes_must_be_in_the_text_exactly_or_nearly() -> None:
    paraphrase = {**OBSERVED, "quote": "The telescope took pictures of a galaxy called M87"}
    near = {**HOSTS, "quote": "M87 hosts a super-massive black hole"}
    result = extract([sample(paraphrase, near)] * 5)
    assert [f.predicate for f in result.facts] == ["hosts"]
    assert result.facts[0].quote == "M87 hosts a supermassive black hole"
    assert result.rejected == {Reason.QUOTE: 1}
    assert locate("m87   HOSTS", TEXT, 90) == "M87 hosts"
    assert locate("Andromeda", TEXT, 90) is None
    text = "The character of Aurakles was created by Len Wein and Dick Dillin."
    assert locate("rakles was created by Len Wein and Dick Dillin", text, 90) == (
        "Aurakles was created by Len Wein and Dick Dillin"  # whole words, never a fragment
    )


def test_an_elided_quote_is_found_as_the_span_it_elides() -> None:
    text = "Alan Shepard, who studied at NWC, died in California in 1998."
    assert locate("Alan Shepard died in California", text, 90) == (
        "Alan Shepard, who studied at NWC, died in California"
    )
    assert locate("Alan Shepard died in Texas", text, 90) is None  # a word not in the text
    assert locate("Shepard died", text, 90) is None  # too short to elide safely
    long_gap = "Shepard was a pilot and then a commander and later an admiral and he died in 1998."
    assert locate("Shepard was an admiral he died in 1998", long_gap, 90) is None


def test_subject_and_object_must_be_mentioned() -> None:
    invented = {**OBSERVED, "subject": "James Webb Space Telescope"}
    elsewhere = {**HOSTS, "object": "quasar"}
    entities = [*[HST, M87, BH], {"name": "James Webb Space Telescope", "type": "Instrument"}]
    entities.append({"name": "quasar", "type": "Object"})
    result = extract([sample(invented, elsewhere, entities=entities)] * 5)
    assert result.facts == []
    assert result.rejected == {Reason.SUBJECT: 1, Reason.OBJECT: 1}
    assert triples_rejected(result) == 2


@pytest.mark.parametrize(
    ("relation", "entities", "reason"),
    [
        ({**OBSERVED, "predicate": "photographed"}, None, Reason.PREDICATE),
        (OBSERVED, [{**HST, "type": "Telescope"}, M87], Reason.TYPE),
        ({**HOSTS, "subject": "Hubble Space Telescope"}, None, Reason.DOMAIN),
        (OBSERVED, [HST, {**M87, "type": "Instrument"}], Reason.RANGE),
    ],
)
def test_schema_domain_and_range_violations_are_rejected_and_counted(
    relation: dict[str, str], entities: list[dict[str, str]] | None, reason: Reason
) -> None:
    result = extract([sample(relation, entities=entities)] * 5)
    assert result.facts == []
    assert result.rejected == {reason: 1}


def test_without_a_schema_anything_typed_goes() -> None:
    free = {**OBSERVED, "predicate": "took images of"}
    result = extract(
        [sample(free, entities=[{**HST, "type": "telescope"}, M87])] * 3, n=3, schema=GraphSchema()
    )
    (fact,) = result.facts
    assert (fact.predicate, fact.subject.type) == ("took_images_of", "telescope")
    assert fact.object is not None and fact.object.type == "Object"


def test_dropped_samples_count_against_agreement() -> None:
    cut = RawChoice(content='{"relations": [{"subject": "M8', finish_reason="length")
    lost = RawChoice(content="[", finish_reason="length")
    result = extract([sample(OBSERVED), sample(OBSERVED), cut, "not json", lost])
    assert by_predicate(result) == {"observed": 0.4}  # 2 of 5 requested, not 2 of 2 valid
    assert result.rejected == {SAMPLES_CUT_OFF: 1, SAMPLES_SALVAGED: 1, SAMPLES_INVALID: 1}
    assert triples_rejected(result) == 0


def test_a_chunk_without_any_valid_sample_fails_alone() -> None:
    llm = ScriptedLLM(["{}"] * 3, max_retries=0)
    extractor = Extractor(llm, SCHEMA, ExtractOptions(samples=3))
    result = run(extractor.document("s1", [CHUNK]))
    assert result.facts == [] and result.rejected == {CHUNKS_FAILED: 1}


def test_one_request_per_chunk_with_n_samples_and_capped_tokens() -> None:
    second = Chunk(id="c2", source_id="s1", ordinal=1, text=TEXT)
    llm = ScriptedLLM([sample(OBSERVED)] * 10)
    extractor = Extractor(llm, SCHEMA, ExtractOptions(samples=5, max_tokens=300))
    result = run(extractor.document("s1", [CHUNK, second]))

    assert [(r.n, r.max_tokens) for r in llm.requests] == [(5, 300)] * 2
    assert all(issubclass(r.schema, ChunkOut) for r in llm.requests)
    assert result.requests == 2
    assert result.prompt_tokens == llm.usage.prompt_tokens > 0
    assert result.completion_tokens == llm.usage.completion_tokens > 0
    assert {f.chunk_id for f in result.facts} == {"c1", "c2"}
    prompt = llm.requests[0].messages[0]["content"]
    assert "observed (Instrument -> Object)" in prompt and "Instrument, Object" in prompt


def test_mentions_keep_agreed_entities_in_the_text() -> None:
    entities = [HST, M87, {"name": "Andromeda", "type": "Object"}]
    result = extract([sample(entities=entities)] * 2 + [sample(entities=[HST])] * 3)
    assert {(m.name, m.type) for m in result.mentions} == {
        ("Hubble Space Telescope", "Instrument"),
        ("M87", "Object"),
    }


def test_judge_alone_is_pure() -> None:
    samples = [ChunkOut.model_validate_json(sample(OBSERVED))] * 2
    judged = judge(samples, 2, text=TEXT, chunk_id="c1", schema=SCHEMA, rules=Rules())
    assert [f.agreement for f in judged.facts] == [1.0]


def test_the_extractor_is_a_langgraph_node() -> None:
    extractor = Extractor(ScriptedLLM([sample(OBSERVED)] * 5), SCHEMA)

    class State(ExtractState, total=False):
        extraction: DocumentExtraction

    graph = StateGraph(State)
    graph.add_node("extract", extractor)
    graph.add_edge(START, "extract")
    graph.add_edge("extract", END)
    out = run(graph.compile().ainvoke({"source_id": "s1", "chunks": [CHUNK]}))
    assert [f.predicate for f in out["extraction"].facts] == ["observed"]


def test_types_are_matched_to_the_schema_ignoring_case() -> None:
    lower = [{**HST, "type": "instrument"}, {**M87, "type": "OBJECT"}]
    result = extract([sample(OBSERVED, entities=lower)] * 2 + [sample(OBSERVED)] * 3)
    (fact,) = result.facts
    assert fact.subject.type == "Instrument"
    assert fact.object is not None and fact.object.type == "Object"


def test_the_response_schema_enumerates_the_user_schemas_predicates_and_types() -> None:
    """The server's grammar then cannot emit a predicate or type outside the schema."""
    defs = output_model(SCHEMA).model_json_schema()["$defs"]
    relation = next(d for name, d in defs.items() if "Relation" in name)
    entity = next(d for name, d in defs.items() if "Entity" in name)
    assert relation["properties"]["predicate"]["enum"] == [r.name for r in SCHEMA.relations]
    assert entity["properties"]["type"]["enum"] == sorted(SCHEMA.entity_types)
    assert output_model(GraphSchema()) is ChunkOut  # free-form without a schema


def test_a_schema_of_entity_types_alone_asks_for_concepts_only() -> None:
    """Concept tagging: no relations to spend max_tokens on, and a prompt that says so."""
    concepts = GraphSchema(entity_types=["Telescope", "Galaxy"])
    model = output_model(concepts)
    assert list(model.model_json_schema()["properties"]) == ["entities"]
    assert model.model_validate({"entities": []}).relations == []
    system = Extractor(ScriptedLLM([]), concepts).messages("text")[0]["content"]
    assert "tag the concepts" in system and "Predicates" not in system
    assert list(output_model(SCHEMA).model_json_schema()["properties"]) == [
        "relations",
        "entities",
    ]
    assert "Predicates" in Extractor(ScriptedLLM([]), SCHEMA).messages("text")[0]["content"]


def test_a_tagged_type_name_is_not_an_entity() -> None:
    """The 0.5B tagged "model" and "field" in abstracts whose schema has those types."""
    concepts = GraphSchema(entity_types=["Telescope", "Galaxy"])
    tagged = [{"name": "galaxy", "type": "Galaxy"}, {"name": "M87", "type": "Galaxy"}]
    samples = [ChunkOut.model_validate({"entities": tagged, "relations": []})] * 2
    judged = judge(samples, 2, text=TEXT, chunk_id="c1", schema=concepts, rules=Rules())
    assert [m.name for m in judged.mentions] == ["M87"]
    assert judged.rejected == {"names_a_type": 1}
