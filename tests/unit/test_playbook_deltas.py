"""Every delta rule: what is accepted, and each reason a bad op is rejected for."""

from datetime import datetime

import pytest
from pydantic import TypeAdapter

from evergraph.errors import UsageError
from evergraph.playbooks.apply import DeltaResult, apply_deltas
from evergraph.playbooks.deltas import (
    AddOp,
    DeltaOp,
    MergeOp,
    RejectReason,
    RemoveOp,
    TagOp,
    UpdateOp,
)
from evergraph.playbooks.models import Playbook
from tests.unit.test_playbook_models import T0, T1, empty, seeded


def base() -> Playbook:
    return seeded(
        ("strategies", "Check units before comparing."),
        ("strategies", "Read the whole question."),
        ("formulas", "CAGR = (end/start)^(1/years) - 1"),
    )


def one(pb: Playbook, op: DeltaOp) -> DeltaResult:
    return apply_deltas(pb, [op], now=T1, origin="curator", reflection_id="r-7")


def rejected_for(pb: Playbook, op: DeltaOp) -> RejectReason:
    result = one(pb, op)
    assert result.applied == [] and result.entries == [] and result.playbook == pb
    assert len(result.rejected) == 1 and result.rejected[0].index == 0
    return result.rejected[0].reason


def test_ops_parse_as_a_discriminated_union() -> None:
    ops = TypeAdapter(list[DeltaOp]).validate_python(
        [
            {"op": "ADD", "section": "formulas", "content": "x"},
            {"op": "TAG", "id": "str-00001", "tag": "harmful", "count": 2},
            {"op": "MERGE", "ids": ["a-00001", "a-00002"], "keep": "a-00001"},
        ]
    )
    assert [type(o) for o in ops] == [AddOp, TagOp, MergeOp]


def test_add_creates_a_bullet_with_the_next_id() -> None:
    result = one(base(), AddOp(section="mistakes", content="  Do not mix % and bp. "))
    new = result.playbook.get("mis-00004")
    assert new is not None
    assert (new.content, new.section, new.reflection_id) == (
        "Do not mix % and bp.",
        "mistakes",
        "r-7",
    )
    assert (new.created_at, new.updated_at, new.helpful, new.harmful) == (T1, T1, 0, 0)
    assert result.playbook.next_id == 5 and result.playbook.version == 4
    [entry] = result.entries
    assert (entry.seq, entry.before, entry.after, entry.origin) == (4, [], [new], "curator")


def test_add_rejections() -> None:
    pb = base()
    assert rejected_for(pb, AddOp(section="nope", content="x")) == RejectReason.UNKNOWN_SECTION
    assert rejected_for(pb, AddOp(section="mistakes", content=" \n ")) == RejectReason.EMPTY_CONTENT
    duplicate = AddOp(section="mistakes", content="check UNITS   before comparing")
    assert rejected_for(pb, duplicate) == RejectReason.DUPLICATE_CONTENT


def test_content_that_copies_a_long_run_of_the_task_is_rejected() -> None:
    """A rule may quote the task (a tag name), not carry a page of it into every prompt."""
    options = ",".join(f"RevenueFromContractWithCustomerPart{i}" for i in range(8))
    task = f"Here is a list of tag options: {options}. Tag the numbers in the sentence."
    copied = AddOp(section="formulas", content=f"Use these tags: {options}")
    quoted = AddOp(section="formulas", content="RevenueFromContractWithCustomerPart3 is revenue.")
    result = apply_deltas(base(), [copied, quoted], now=T1, task=task)
    [rejection] = result.rejected
    assert (rejection.index, rejection.reason) == (0, RejectReason.COPIES_TASK)
    assert "characters of the task" in rejection.detail
    assert result.applied == [quoted]
    assert apply_deltas(base(), [copied], now=T1).applied == [copied]  # no task given: no check


def test_update_replaces_content_and_drops_the_embedding() -> None:
    pb = base()
    first = pb.bullets[0].model_copy(update={"embedding": [1.0]})
    pb = pb.model_copy(update={"bullets": [first, *pb.bullets[1:]]})
    result = one(pb, UpdateOp(id="str-00001", content="Convert units first."))
    after = result.playbook.get("str-00001")
    assert after is not None
    assert (after.content, after.embedding, after.updated_at) == ("Convert units first.", None, T1)
    assert after.created_at == T0
    assert result.entries[0].before[0].content == "Check units before comparing."


def test_update_rejections() -> None:
    pb = base()
    assert rejected_for(pb, UpdateOp(id="str-00099", content="x")) == RejectReason.UNKNOWN_ID
    assert rejected_for(pb, UpdateOp(id="str-00001", content="")) == RejectReason.EMPTY_CONTENT
    same = UpdateOp(id="str-00001", content="check units before comparing")
    assert rejected_for(pb, same) == RejectReason.UNCHANGED_CONTENT
    twin = UpdateOp(id="str-00001", content="Read the whole question")
    assert rejected_for(pb, twin) == RejectReason.DUPLICATE_CONTENT


def test_tag_counts_verdicts_and_neutral_changes_nothing() -> None:
    pb = base()
    result = apply_deltas(
        pb,
        [
            TagOp(id="str-00001", tag="helpful", count=3),
            TagOp(id="str-00001", tag="harmful"),
            TagOp(id="for-00003", tag="neutral"),
        ],
        now=T1,
    )
    tagged = result.playbook.get("str-00001")
    assert tagged is not None and (tagged.helpful, tagged.harmful) == (3, 1)
    assert len(result.applied) == 3 and [e.seq for e in result.entries] == [4, 5]
    assert result.playbook.get("for-00003") == pb.get("for-00003")
    assert rejected_for(pb, TagOp(id="x-00009", tag="helpful")) == RejectReason.UNKNOWN_ID


def test_merge_sums_counters_into_the_kept_bullet() -> None:
    pb = apply_deltas(
        base(),
        [TagOp(id="str-00001", tag="helpful", count=2), TagOp(id="str-00002", tag="harmful")],
        now=T0,
    ).playbook
    result = one(pb, MergeOp(ids=["str-00001", "str-00002"], keep="str-00002"))
    assert [b.id for b in result.playbook.bullets] == ["str-00002", "for-00003"]
    kept = result.playbook.get("str-00002")
    assert kept is not None
    assert (kept.content, kept.helpful, kept.harmful) == ("Read the whole question.", 2, 1)
    assert [b.id for b in result.entries[0].before] == ["str-00001", "str-00002"]


def test_merge_with_new_content() -> None:
    op = MergeOp(
        ids=["str-00001", "str-00002"], keep="str-00001", content="Read fully; check units"
    )
    kept = one(base(), op).playbook.get("str-00001")
    assert kept is not None and kept.content == "Read fully; check units"


def test_merge_rejections() -> None:
    pb = base()
    too_few = MergeOp(ids=["str-00001", "str-00001"], keep="str-00001")
    assert rejected_for(pb, too_few) == RejectReason.MERGE_TOO_FEW
    keep_elsewhere = MergeOp(ids=["str-00001", "str-00002"], keep="for-00003")
    assert rejected_for(pb, keep_elsewhere) == RejectReason.MERGE_KEEP_NOT_LISTED
    unknown = MergeOp(ids=["str-00001", "str-00042"], keep="str-00001")
    assert rejected_for(pb, unknown) == RejectReason.UNKNOWN_ID
    blank = MergeOp(ids=["str-00001", "str-00002"], keep="str-00001", content=" ")
    assert rejected_for(pb, blank) == RejectReason.EMPTY_CONTENT
    twin = MergeOp(
        ids=["str-00001", "str-00002"], keep="str-00001", content="cagr = (end/start)^(1/years) - 1"
    )
    assert rejected_for(pb, twin) == RejectReason.DUPLICATE_CONTENT


def test_remove() -> None:
    result = one(base(), RemoveOp(id="str-00002", reason="misleading"))
    assert [b.id for b in result.playbook.bullets] == ["str-00001", "for-00003"]
    assert result.entries[0].reason == "misleading" and result.entries[0].after == []
    assert rejected_for(base(), RemoveOp(id="str-00002x")) == RejectReason.UNKNOWN_ID


def test_batch_applies_good_ops_and_reports_bad_ones_in_order() -> None:
    ops: list[DeltaOp] = [
        AddOp(section="mistakes", content="New idea"),
        AddOp(section="mistakes", content="new idea."),  # duplicate of the op before
        RemoveOp(id="str-00001"),
        TagOp(id="str-00001", tag="helpful"),  # removed just above
        UpdateOp(id="for-00003", content="CAGR = (end / start) ** (1 / years) - 1"),
    ]
    result = apply_deltas(base(), ops, now=T1)
    assert [r.index for r in result.rejected] == [1, 3]
    assert [r.reason for r in result.rejected] == [
        RejectReason.DUPLICATE_CONTENT,
        RejectReason.UNKNOWN_ID,
    ]
    assert result.applied == [ops[0], ops[2], ops[4]]
    assert [e.seq for e in result.entries] == [4, 5, 6] and result.playbook.version == 6


def test_ids_are_never_reused_after_removal() -> None:
    pb = one(base(), RemoveOp(id="for-00003")).playbook
    added = one(pb, AddOp(section="formulas", content="ROI = gain / cost")).playbook
    assert [b.id for b in added.bullets][-1] == "for-00004"


def test_apply_is_deterministic_and_leaves_its_input_alone() -> None:
    pb = base()
    snapshot = pb.model_dump()
    ops: list[DeltaOp] = [
        AddOp(section="mistakes", content="a"),
        TagOp(id="str-00001", tag="helpful"),
        MergeOp(ids=["str-00001", "str-00002"], keep="str-00001"),
    ]
    first = apply_deltas(pb, ops, now=T1)
    second = apply_deltas(pb, ops, now=T1)
    assert first.model_dump() == second.model_dump()
    assert pb.model_dump() == snapshot


def test_naive_time_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="aware"):
        apply_deltas(empty(), [], now=datetime(2026, 1, 1))
