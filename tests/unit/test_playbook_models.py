"""Playbook model invariants; also home of the small builders the other playbook tests share."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp
from evergraph.playbooks.models import Bullet, Playbook, bullet_id, normalise

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
SECTIONS = ["strategies", "formulas", "mistakes"]


def empty() -> Playbook:
    return Playbook(name="finance", sections=SECTIONS)


def seeded(*rows: tuple[str, str]) -> Playbook:
    """A playbook holding (section, content) rows, added at T0 as ids 1, 2, ..."""
    result = apply_deltas(empty(), [AddOp(section=s, content=c) for s, c in rows], now=T0)
    assert not result.rejected
    return result.playbook


def test_ids_are_readable_and_numbered() -> None:
    assert bullet_id("strategies", 12) == "str-00012"
    assert bullet_id("Common Mistakes!", 3) == "com-00003"
    assert bullet_id("§", 1) == "b-00001"


def test_normalise_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert normalise("  Use  the CAGR formula. ") == "use the cagr formula"
    assert normalise(" ... ") == ""


def test_usefulness_is_smoothed() -> None:
    b = Bullet(id="str-00001", section="s", content="x", created_at=T0, updated_at=T0)
    assert b.usefulness == 0.5
    assert b.model_copy(update={"helpful": 3, "harmful": 1}).usefulness == pytest.approx(4 / 6)


def test_playbook_rejects_inconsistent_data() -> None:
    b = Bullet(id="str-00001", section="strategies", content="x", created_at=T0, updated_at=T0)
    with pytest.raises(ValidationError, match="distinct"):
        Playbook(name="p", sections=["a", "a"])
    with pytest.raises(ValidationError, match="unique"):
        Playbook(name="p", sections=SECTIONS, bullets=[b, b], next_id=2)
    with pytest.raises(ValidationError, match="declared section"):
        Playbook(name="p", sections=["other"], bullets=[b], next_id=2)
    with pytest.raises(ValidationError, match="next_id"):
        Playbook(name="p", sections=SECTIONS, bullets=[b])


def test_seeded_builder_numbers_bullets_in_order() -> None:
    pb = seeded(("strategies", "a"), ("formulas", "b"))
    assert [b.id for b in pb.bullets] == ["str-00001", "for-00002"]
    assert (pb.version, pb.next_id) == (2, 3)
