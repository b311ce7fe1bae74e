"""Grow-and-refine: near-duplicates merged with counters summed, harmful bullets pruned,
both recorded in the history like any other change."""

from evergraph.embed.testing import HashingEmbedder
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import DeltaOp, MergeOp, RemoveOp, TagOp
from evergraph.playbooks.history import revert
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.refine import RefineConfig, dedup_ops, prune_ops, refine
from tests.unit.test_playbook_models import T0, T1, seeded

UNITS = "Always check the units before comparing numbers."  # cosine 1.0 with the comma variant
UNITS_COMMA = "always check the units, before comparing numbers!"
UNITS_THE = "Always check the units before comparing the numbers"  # cosine ~0.96 with UNITS


def tagged(pb: Playbook, *ops: DeltaOp) -> Playbook:
    result = apply_deltas(pb, ops, now=T0)
    assert not result.rejected
    return result.playbook


def units_playbook() -> Playbook:
    pb = seeded(
        ("strategies", UNITS),
        ("strategies", "Read the whole question before answering."),
        ("strategies", UNITS_COMMA),
        ("mistakes", UNITS_THE.replace("units", "units,")),  # another section: kept apart
        ("strategies", UNITS_THE),
    )
    return tagged(
        pb,
        TagOp(id="str-00001", tag="helpful", count=1),
        TagOp(id="str-00003", tag="helpful", count=4),
        TagOp(id="str-00005", tag="harmful", count=1),
    )


def test_dedup_merges_near_duplicates_within_a_section_into_the_most_useful() -> None:
    ops = dedup_ops(units_playbook(), HashingEmbedder(), RefineConfig())
    assert [(op.ids, op.keep) for op in ops] == [
        (["str-00001", "str-00003", "str-00005"], "str-00003")
    ]
    result = apply_deltas(units_playbook(), ops, now=T1)
    kept = result.playbook.get("str-00003")
    assert kept is not None and (kept.content, kept.helpful, kept.harmful) == (UNITS_COMMA, 5, 1)
    assert [b.id for b in result.playbook.bullets] == ["str-00002", "str-00003", "mis-00004"]


def test_dedup_threshold_is_configurable() -> None:
    strict = dedup_ops(units_playbook(), HashingEmbedder(), RefineConfig(dedup_threshold=0.99))
    assert [(op.ids, op.keep) for op in strict] == [(["str-00001", "str-00003"], "str-00003")]


def test_prune_needs_enough_uses_and_a_harmful_margin() -> None:
    pb = tagged(
        seeded(("strategies", "a"), ("strategies", "b"), ("strategies", "c"), ("mistakes", "d")),
        TagOp(id="str-00001", tag="harmful", count=3),  # 0 vs 3: pruned
        TagOp(id="str-00002", tag="harmful", count=3),
        TagOp(id="str-00002", tag="helpful", count=2),  # 2 vs 3: within the margin
        TagOp(id="str-00003", tag="harmful", count=2),  # only 2 uses
        TagOp(id="mis-00004", tag="helpful", count=5),
    )
    assert [op.id for op in prune_ops(pb, RefineConfig())] == ["str-00001"]
    loose = RefineConfig(prune_margin=1, prune_min_uses=2)
    assert [op.id for op in prune_ops(pb, loose)] == ["str-00001", "str-00002", "str-00003"]


def test_refine_prunes_first_then_dedups_what_is_left_and_logs_both() -> None:
    pb = tagged(units_playbook(), TagOp(id="str-00001", tag="harmful", count=4))  # 1 vs 4
    result = refine(pb, HashingEmbedder(), now=T1)
    assert not result.rejected
    assert [type(op) for op in result.applied] == [RemoveOp, MergeOp]
    merge = result.applied[1]
    assert isinstance(merge, MergeOp) and merge.ids == ["str-00003", "str-00005"]
    assert {e.origin for e in result.entries} == {"refine"}
    assert [e.seq for e in result.entries] == [pb.version + 1, pb.version + 2]
    assert "harmful 4 vs helpful 1" in result.entries[0].reason
    back = revert(result.playbook, result.entries, pb.version, now=T1)  # the tail is enough
    assert back.playbook.bullets == pb.bullets


def test_refine_can_be_switched_off() -> None:
    config = RefineConfig(dedup=False, prune=False)
    result = refine(units_playbook(), HashingEmbedder(), now=T1, config=config)
    assert result.applied == [] and result.playbook == units_playbook()
