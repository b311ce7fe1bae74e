"""Emerging and fading concepts: a trend in the share of papers, tested, not eyeballed.

For each concept, period t has n_t papers of which x_t name it. The Cochran-Armitage test for
trend asks whether the share x_t / n_t moves linearly with t more than chance would move it:
it is the score test of the slope in a logistic regression of "names the concept" on t, so it
weighs a period by its number of papers (a share of 1/2 in a two-paper month counts for little)
and needs no fitting. z > 0 is rising, z < 0 fading; the two-sided p-values of all concepts
tested are corrected for multiple testing with Benjamini-Hochberg (q). Concepts named by fewer
than `min_papers` papers are not tested: no test can show a trend in one or two papers, and
testing them only dilutes the correction.

The slope (change of share per period, least squares) is reported as the effect size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import sqrt

import numpy as np
from scipy import stats

ALPHA = 0.05
MIN_PAPERS = 5


@dataclass(frozen=True)
class Trend:
    concept: str
    counts: list[int]  # papers naming it, per period
    z: float
    p: float
    q: float  # p after Benjamini-Hochberg over every concept tested
    slope: float  # share of papers per period, change per period

    def direction(self, alpha: float = ALPHA) -> str:
        if self.q >= alpha or self.z == 0:
            return "flat"
        return "rising" if self.z > 0 else "fading"


def cochran_armitage(counts: Sequence[int], totals: Sequence[int]) -> tuple[float, float]:
    """The trend statistic z over periods 0, 1, 2, ... and its two-sided p-value."""
    x = np.asarray(counts, dtype=float)
    n = np.asarray(totals, dtype=float)
    t = np.arange(len(n), dtype=float)
    big_n, share = n.sum(), x.sum() / max(n.sum(), 1.0)
    statistic = float((t * (x - n * share)).sum())
    variance = share * (1 - share) * float((n * t**2).sum() - (n * t).sum() ** 2 / big_n)
    if variance <= 0:  # no papers, the concept in all or none of them, or one period
        return 0.0, 1.0
    z = statistic / sqrt(variance)
    return z, float(2 * stats.norm.sf(abs(z)))


def share_slope(counts: Sequence[int], totals: Sequence[int]) -> float:
    """Least-squares slope of the share over the periods that have papers."""
    points = [(t, c / n) for t, (c, n) in enumerate(zip(counts, totals, strict=True)) if n]
    if len(points) < 2:
        return 0.0
    ts, shares = zip(*points, strict=True)
    return float(stats.linregress(ts, shares).slope)


def trends(
    counts: Mapping[str, Sequence[int]],
    totals: Sequence[int],
    *,
    min_papers: int = MIN_PAPERS,
) -> list[Trend]:
    """Every concept with at least `min_papers` papers, tested; strongest rising first."""
    tested = {c: list(v) for c, v in counts.items() if sum(v) >= min_papers}
    if not tested:
        return []
    results = {c: cochran_armitage(v, totals) for c, v in tested.items()}
    qs = stats.false_discovery_control([p for _, p in results.values()])
    found = [
        Trend(c, tested[c], z, p, float(q), share_slope(tested[c], totals))
        for (c, (z, p)), q in zip(results.items(), qs, strict=True)
    ]
    return sorted(found, key=lambda tr: (-tr.z, tr.concept))
