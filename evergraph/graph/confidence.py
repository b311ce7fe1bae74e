"""How independent pieces of evidence combine into a fact's confidence and support.

Each source counts once: its contribution is the highest confidence among its quotes (a second
quote from the same document is not independent evidence). Sources combine by noisy-OR,
1 - prod(1 - c_i): the fact is wrong only if every source is wrong, assuming they err
independently. The result is capped below 1.0 (default 0.99) because that assumption is
optimistic (sources copy each other) and no amount of agreement is proof; a cap also keeps one
strong source from making a fact impossible to contest.
"""

from __future__ import annotations

from collections.abc import Iterable

from evergraph.errors import UsageError
from evergraph.graph.models import Evidence, Fact

CONFIDENCE_CAP = 0.99


def check_cap(cap: float) -> float:
    if not 0.0 < cap < 1.0:
        raise UsageError(
            f"the confidence cap must be between 0 and 1, excluded (got {cap})",
            fix="use a value such as 0.99",
        )
    return cap


def noisy_or(confidences: Iterable[float], *, cap: float = CONFIDENCE_CAP) -> float:
    """1 - prod(1 - c), capped. Applying it to a capped result and one more confidence gives
    the same as applying it to all of them at once, so it can run incrementally."""
    doubt = 1.0
    for c in confidences:
        doubt *= 1.0 - c
    return min(1.0 - doubt, cap)


def evidence_confidence(e: Evidence) -> float:
    return e.agreement if e.confidence is None else e.confidence


def from_evidence(
    evidence: Iterable[Evidence], *, cap: float = CONFIDENCE_CAP
) -> tuple[int, float]:
    """(support, confidence) of a fact with exactly this evidence."""
    best: dict[str, float] = {}
    for e in evidence:
        best[e.source_id] = max(best.get(e.source_id, 0.0), evidence_confidence(e))
    return len(best), noisy_or(best.values(), cap=cap)


def recounted(fact: Fact, evidence: Iterable[Evidence], *, cap: float = CONFIDENCE_CAP) -> Fact:
    """The fact with support and confidence as its evidence now says (after evidence moved
    or was withdrawn)."""
    support, confidence = from_evidence(evidence, cap=cap)
    return fact.model_copy(update={"support": support, "confidence": confidence})
