"""The curator's response schema offers only the edits that can apply to the playbook shown."""

from __future__ import annotations

from typing import Any

from evergraph.agents.ace_prompts import (
    DEFAULT_SECTIONS,
    CurateOut,
    ReflectOut,
    curate_messages,
    curate_model,
)
from evergraph.playbooks.deltas import AddOp, RemoveOp


def variants(model: type[CurateOut]) -> dict[str, dict[str, Any]]:
    schema = model.model_json_schema()
    return {
        d["properties"]["op"]["const"]: d["properties"]
        for d in schema["$defs"].values()
        if "op" in d.get("properties", {})
    }


def test_an_empty_playbook_can_only_grow() -> None:
    model = curate_model(DEFAULT_SECTIONS, [], 3)
    ops = variants(model)
    assert list(ops) == ["ADD"]
    assert ops["ADD"]["section"]["enum"] == list(DEFAULT_SECTIONS)
    assert model.model_json_schema()["properties"]["operations"]["maxItems"] == 3


def test_edits_name_only_the_bullets_shown() -> None:
    ids = ["str-00001", "for-00002"]
    assert sorted(variants(curate_model(DEFAULT_SECTIONS, ids, 2))) == ["ADD", "MERGE", "UPDATE"]
    ops = variants(curate_model(DEFAULT_SECTIONS, ids, 2, remove=True))
    assert sorted(ops) == ["ADD", "MERGE", "REMOVE", "UPDATE"]  # no TAG: the reflector's
    assert ops["UPDATE"]["id"]["enum"] == ops["REMOVE"]["id"]["enum"] == ids
    assert ops["MERGE"]["ids"]["items"]["enum"] == ops["MERGE"]["keep"]["enum"] == ids
    assert "MERGE" not in variants(curate_model(DEFAULT_SECTIONS, ids[:1], 2))


def test_validation_stays_loose_so_a_stray_id_is_rejected_with_a_reason_later() -> None:
    """A server that ignores the enum still yields ops, which `apply` rejects as unknown_id."""
    model = curate_model(DEFAULT_SECTIONS, ["str-00001"], 3, remove=True)
    out = model.model_validate({"operations": [{"op": "REMOVE", "id": "1"}]})
    plain = CurateOut.model_validate(out.model_dump()).operations
    assert type(plain[0]) is RemoveOp and plain[0].id == "1"
    add = model.model_validate({"operations": [{"op": "ADD", "section": "x", "content": "c"}]})
    assert isinstance(add.operations[0], AddOp)


def test_the_curator_is_told_of_remove_only_when_it_may() -> None:
    review = ReflectOut(error="none", root_cause="r", key_insight="k", bullet_tags=[])

    def system(remove: bool) -> str:
        messages = curate_messages(
            "task", "", review, sections=DEFAULT_SECTIONS, max_ops=3, task_chars=200, remove=remove
        )
        return str(messages[0]["content"])

    assert "REMOVE" not in system(False) and "REMOVE" in system(True)
