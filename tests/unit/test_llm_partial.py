"""Salvaging the complete items of an answer cut off at max_tokens (`llm.partial`)."""

from __future__ import annotations

from pydantic import BaseModel

from evergraph.llm.partial import ItemLists, salvage


class Pair(BaseModel):
    a: str
    b: str


class Pairs(ItemLists):
    first: list[Pair]
    second: list[Pair]


class Single(BaseModel):
    first: list[Pair]


def test_complete_leading_items_are_kept_and_the_cut_one_dropped() -> None:
    cut = '{"first": [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}, {"a": "5", "b": "6'
    kept = salvage(cut, Pairs)
    assert kept == Pairs(first=[Pair(a="1", b="2"), Pair(a="3", b="4")], second=[])


def test_a_cut_inside_the_second_list_keeps_the_first_whole() -> None:
    cut = '{"first": [{"a": "1", "b": "2"}], "second": [{"a": "3", "b": "4"}, {"a": "5"'
    kept = salvage(cut, Pairs)
    assert kept is not None and len(kept.first) == 1 and kept.second == [Pair(a="3", b="4")]


def test_only_marked_schemas_and_json_objects_are_salvaged() -> None:
    cut = '{"first": [{"a": "1", "b": "2"}, {"a": "3'
    assert salvage(cut, Single) is None  # its items may not stand alone
    assert salvage("not json", Pairs) is None
    assert salvage('["a", "b', Pairs) is None
    assert salvage('{"first": [{"a": 1, "b": "2"}], "second": "x"', Pairs) is None
