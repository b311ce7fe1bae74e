"""History entries, revert (itself recorded) and diff."""

import pytest

from evergraph.errors import UsageError
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp, DeltaOp, MergeOp, RemoveOp, TagOp, UpdateOp
from evergraph.playbooks.history import HistoryEntry, diff, revert
from evergraph.playbooks.models import Playbook
from tests.unit.test_playbook_models import T0, T1, empty


def evolve() -> tuple[list[Playbook], list[HistoryEntry]]:
    """States after each batch, and the full history that led to the last one."""
    batches: list[list[DeltaOp]] = [
        [AddOp(section="strategies", content="a"), AddOp(section="strategies", content="b")],
        [
            AddOp(section="formulas", content="c"),
            TagOp(id="str-00001", tag="helpful", count=2),
            TagOp(id="str-00002", tag="harmful"),
        ],
        [
            UpdateOp(id="for-00003", content="c, revised"),
            MergeOp(ids=["str-00001", "str-00002"], keep="str-00001"),
            RemoveOp(id="for-00003"),
            AddOp(section="mistakes", content="d"),
        ],
    ]
    states = [empty()]
    history: list[HistoryEntry] = []
    for ops in batches:
        result = apply_deltas(states[-1], ops, now=T0)
        assert not result.rejected
        states.append(result.playbook)
        history += result.entries
    return states, history


def test_history_is_numbered_by_version() -> None:
    states, history = evolve()
    assert [e.seq for e in history] == list(range(1, 10))
    assert [s.version for s in states] == [0, 2, 5, 9]
    assert [e.op.op for e in history] == [
        "ADD", "ADD", "ADD", "TAG", "TAG", "UPDATE", "MERGE", "REMOVE", "ADD",
    ]  # fmt: skip


@pytest.mark.parametrize("back", [0, 1, 2])
def test_revert_round_trip(back: int) -> None:
    states, history = evolve()
    target = states[back]
    result = revert(states[-1], history, target.version, now=T1)
    assert diff(target, result.playbook).empty
    assert result.playbook.bullets == target.bullets
    assert result.playbook.version == 9 + len(result.entries)
    assert [e.reverts for e in result.entries] == list(range(9, target.version, -1))
    assert {e.origin for e in result.entries} == {"revert"}


def test_a_revert_can_be_reverted() -> None:
    states, history = evolve()
    undone = revert(states[-1], history, 5, now=T1)
    redone = revert(undone.playbook, history + undone.entries, 9, now=T1)
    assert redone.playbook.bullets == states[-1].bullets
    assert redone.playbook.version == 9 + 4 + 4


def test_revert_misuse() -> None:
    states, history = evolve()
    with pytest.raises(UsageError, match="versions run from 0 to 9"):
        revert(states[-1], history, 10, now=T1)
    with pytest.raises(UsageError, match="history ends at 8"):
        revert(states[-1], history[:-1], 0, now=T1)
    tampered = states[-1].model_copy(
        update={"bullets": [b.model_copy(update={"helpful": 9}) for b in states[-1].bullets]}
    )
    with pytest.raises(UsageError, match="does not match"):
        revert(tampered, history, 0, now=T1)


def test_history_keeps_no_embeddings() -> None:
    states, _ = evolve()
    pb = states[-1]
    pb = pb.model_copy(
        update={"bullets": [b.model_copy(update={"embedding": [0.5]}) for b in pb.bullets]}
    )
    entry = apply_deltas(pb, [TagOp(id="mis-00004", tag="helpful")], now=T1).entries[0]
    assert entry.before[0].embedding is None and entry.after[0].embedding is None


def test_diff_lists_added_removed_and_changed() -> None:
    states, _ = evolve()
    d = diff(states[2], states[3])
    assert [b.id for b in d.added] == ["mis-00004"]
    assert [b.id for b in d.removed] == ["str-00002", "for-00003"]
    [change] = d.changed
    assert change.before.id == "str-00001"
    assert (change.before.helpful, change.before.harmful) == (2, 0)
    assert (change.after.helpful, change.after.harmful) == (2, 1)
    assert change.after.updated_at == T0 and not d.empty
    vector = states[3].bullets[0].model_copy(update={"embedding": [1.0]})
    cached = states[3].model_copy(update={"bullets": [vector, *states[3].bullets[1:]]})
    assert diff(states[3], cached).empty
