"""Rendering: ids cited, sections kept, the budget always enforced, relevant bullets first."""

from collections.abc import Sequence

import pytest

from evergraph.embed.base import Vectors
from evergraph.embed.testing import HashingEmbedder
from evergraph.errors import UsageError
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import TagOp
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.render import TokenCounter, estimate_tokens, render
from evergraph.playbooks.vectors import bullet_vectors, with_embeddings
from tests.unit.test_playbook_models import T0, seeded


def finance() -> Playbook:
    return seeded(
        ("strategies", "Read the whole question before answering."),
        ("formulas", "Compound annual growth rate CAGR = (end/start)^(1/years) - 1."),
        ("mistakes", "Percent and basis points differ: 1% is 100 bp."),
        ("strategies", "Quote the filing's exact tag name for XBRL entity questions."),
        ("formulas", "Gross margin = (revenue - cost of goods sold) / revenue."),
    )


def test_everything_fits_in_section_order_with_ids() -> None:
    out = render(finance(), budget=10_000)
    assert out.text == "\n".join(
        [
            "## strategies",
            "[str-00001] helpful=0 harmful=0 :: Read the whole question before answering.",
            "[str-00004] helpful=0 harmful=0 :: Quote the filing's exact tag name for XBRL "
            "entity questions.",
            "## formulas",
            "[for-00002] helpful=0 harmful=0 :: Compound annual growth rate CAGR = "
            "(end/start)^(1/years) - 1.",
            "[for-00005] helpful=0 harmful=0 :: Gross margin = (revenue - cost of goods sold) "
            "/ revenue.",
            "## mistakes",
            "[mis-00003] helpful=0 harmful=0 :: Percent and basis points differ: 1% is 100 bp.",
        ]
    )
    assert out.bullet_ids == ["str-00001", "str-00004", "for-00002", "for-00005", "mis-00003"]
    assert (out.omitted, out.tokens) == (0, estimate_tokens(out.text))


def test_estimate_is_four_characters_per_token() -> None:
    assert [estimate_tokens(t) for t in ["", "abc", "abcd", "abcde"]] == [0, 1, 1, 2]


def words(text: str) -> int:
    return len(text.split())


def squared(text: str) -> int:
    """Costs more joined than apart, which the final check must catch."""
    return len(text) ** 2 // 100


@pytest.mark.parametrize("counter", [estimate_tokens, words, len, squared])
@pytest.mark.parametrize("task", [None, "What is the CAGR growth rate?"])
def test_budget_is_always_enforced(counter: TokenCounter, task: str | None) -> None:
    pb = finance()
    full = counter(render(pb, budget=10**9, count_tokens=counter).text)
    seen: set[int] = set()
    for budget in [*range(0, full, max(1, full // 300)), full]:
        out = render(pb, budget=budget, task=task, embedder=HashingEmbedder(), count_tokens=counter)
        assert out.tokens == counter(out.text) <= budget
        assert out.omitted == 5 - len(out.bullet_ids)
        seen.add(len(out.bullet_ids))
    assert seen == {0, 1, 2, 3, 4, 5}  # every size is reached on the way up


def test_a_bullet_longer_than_the_budget_is_skipped_not_truncated() -> None:
    pb = seeded(("strategies", "word " * 200), ("strategies", "Short rule."))
    out = render(pb, budget=30)
    assert out.bullet_ids == ["str-00002"] and out.omitted == 1 and out.tokens <= 30


def test_the_relevant_bullet_is_chosen_when_space_is_short() -> None:
    pb = finance()
    out = render(pb, budget=30, task="compute the CAGR growth rate", embedder=HashingEmbedder())
    assert out.bullet_ids == ["for-00002"]
    out = render(pb, budget=30, task="percent versus basis points", embedder=HashingEmbedder())
    assert out.bullet_ids == ["mis-00003"]


def test_usefulness_weighs_in_and_decides_without_a_task() -> None:
    tags = [TagOp(id="str-00001", tag="harmful", count=5), TagOp(id="mis-00003", tag="helpful")]
    pb = apply_deltas(finance(), tags, now=T0).playbook
    out = render(pb, budget=25)
    assert out.bullet_ids == ["mis-00003"]


def test_negative_budget_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        render(finance(), budget=-1)


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim: int = 64) -> None:
        super().__init__(dim)
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts += texts
        return super().embed(texts)


def test_cached_embeddings_are_reused_and_never_rendered() -> None:
    embedder = CountingEmbedder()
    pb = with_embeddings(finance(), embedder)
    assert len(embedder.texts) == 5 and all(len(b.embedding or []) == 64 for b in pb.bullets)
    again = bullet_vectors(pb.bullets, embedder)
    assert len(embedder.texts) == 5
    assert again == pytest.approx(bullet_vectors(finance().bullets, HashingEmbedder()))
    assert render(pb, budget=10_000).text == render(finance(), budget=10_000).text
    other = CountingEmbedder(dim=32)  # a cache of another dimension is not used
    assert bullet_vectors(pb.bullets, other).shape == (5, 32) and len(other.texts) == 5
