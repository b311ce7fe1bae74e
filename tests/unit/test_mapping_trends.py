"""Period slicing and trend statistics on synthetic data whose answer is known."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from evergraph.mapping.periods import Freq, period_of, period_range, period_start
from evergraph.mapping.trends import cochran_armitage, share_slope, trends


def at(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("freq", "label"),
    [(Freq.year, "2008"), (Freq.quarter, "2008-Q2"), (Freq.month, "2008-06")],
)
def test_a_date_falls_in_its_period_and_the_period_starts_on_its_first_day(
    freq: Freq, label: str
) -> None:
    assert period_of(at(2008, 6, 30), freq) == label
    start = period_start(label, freq)
    assert period_of(start, freq) == label
    assert start <= at(2008, 6, 30)


def test_period_ranges_are_contiguous_across_years_and_include_empty_periods() -> None:
    assert period_range(at(2007, 11), at(2008, 2), Freq.month) == [
        "2007-11", "2007-12", "2008-01", "2008-02",
    ]  # fmt: skip
    assert period_range(at(2007, 11), at(2008, 5), Freq.quarter) == [
        "2007-Q4", "2008-Q1", "2008-Q2",
    ]  # fmt: skip
    assert period_range(at(2005, 3), at(2008, 1), Freq.year) == ["2005", "2006", "2007", "2008"]
    assert period_range(at(2008, 3), at(2008, 3), Freq.month) == ["2008-03"]


def test_with_two_periods_the_trend_test_is_the_chi_square_test_of_the_2x2_table() -> None:
    counts, totals = [12, 30], [100, 90]
    z, p = cochran_armitage(counts, totals)
    table = np.array([counts, [n - c for c, n in zip(counts, totals, strict=True)]])
    chi2, p_chi2, _, _ = stats.chi2_contingency(table, correction=False)
    assert z > 0
    assert z**2 == pytest.approx(chi2)
    assert p == pytest.approx(p_chi2)


def test_the_trend_statistic_is_signed_and_symmetric_in_time() -> None:
    counts, totals = [2, 5, 9, 14, 20], [50, 50, 50, 50, 50]
    z, p = cochran_armitage(counts, totals)
    z_reversed, p_reversed = cochran_armitage(counts[::-1], totals[::-1])
    assert z > 3 and z_reversed == pytest.approx(-z) and p == pytest.approx(p_reversed)
    assert cochran_armitage([5, 5, 5], [50, 50, 50]) == (0.0, 1.0)
    assert cochran_armitage([0, 0, 0], [50, 50, 50]) == (0.0, 1.0)  # never named


def test_rising_fading_and_flat_concepts_are_told_apart() -> None:
    totals = [100] * 6
    frequency = {
        "rising": [2, 6, 10, 15, 20, 26],
        "fading": [30, 24, 18, 12, 8, 3],
        "flat": [10, 12, 9, 11, 10, 11],
        "noisy-but-small": [0, 1, 0, 2, 0, 3],
        "rare": [0, 0, 0, 0, 1, 2],  # under min_papers: not tested
    }
    found = {t.concept: t for t in trends(frequency, totals, min_papers=5)}
    assert set(found) == {"rising", "fading", "flat", "noisy-but-small"}
    assert found["rising"].direction() == "rising" and found["rising"].slope > 0
    assert found["fading"].direction() == "fading" and found["fading"].slope < 0
    assert found["flat"].direction() == "flat"
    assert found["noisy-but-small"].direction() == "flat"
    for t in found.values():
        assert t.p <= t.q <= 1  # Benjamini-Hochberg never lowers a p-value
    ordered = [t.concept for t in trends(frequency, totals, min_papers=5)]
    assert ordered[0] == "rising" and ordered[-1] == "fading"


def test_a_share_that_rises_only_because_papers_are_few_is_not_significant() -> None:
    # the same shares as a clear riser, but in periods with four papers each
    z_small, p_small = cochran_armitage([0, 1, 2, 3], [4, 4, 4, 4])
    z_big, p_big = cochran_armitage([0, 25, 50, 75], [100, 100, 100, 100])
    assert z_small > 0 and z_big > z_small
    assert p_small > 0.001 > p_big


def test_the_slope_ignores_periods_without_papers() -> None:
    assert share_slope([1, 0, 3], [10, 0, 10]) == pytest.approx(0.1)
    assert share_slope([1, 0], [10, 0]) == 0.0
