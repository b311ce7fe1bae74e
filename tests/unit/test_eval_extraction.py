"""The extraction benchmarks' variants: four readings of the same samples."""

from __future__ import annotations

from evergraph.agents.extract_rules import ChunkOut, Rules
from evergraph.evals.extraction import Drawn, Item, variants
from evergraph.llm.base import Samples
from tests.unit.test_extract import HOSTS, OBSERVED, SCHEMA, TEXT, sample


def test_raw_single_union_and_agreement_read_the_same_samples() -> None:
    invented = {**OBSERVED, "object": "Andromeda"}  # not in the text
    drawn = [
        ChunkOut.model_validate_json(sample(invented, HOSTS)),
        ChunkOut.model_validate_json(sample(OBSERVED)),
        ChunkOut.model_validate_json(sample(OBSERVED)),
    ]
    item = Item("s1", TEXT, SCHEMA)
    found = variants(Drawn(item, Samples[ChunkOut](values=drawn, requested=3), 1.0), Rules())

    assert [t.object for t in found["raw"]] == ["Andromeda", "Supermassive  black hole"]
    assert [t.predicate for t in found["single"]] == ["hosts"]  # the invention is rejected
    assert sorted(t.predicate for t in found["union"]) == ["hosts", "observed"]
    assert [(t.predicate, t.agreement) for t in found["agreement"]] == [("observed", 2 / 3)]


def test_an_item_without_valid_samples_predicts_nothing() -> None:
    found = variants(Drawn(Item("s1", TEXT, SCHEMA), None, 1.0), Rules())
    assert all(triples == [] for triples in found.values())
