"""Grow-and-refine: fold near-duplicate bullets and prune the ones that keep proving harmful.

Both only propose delta operations and pass them through `apply_deltas`, so every merge and
removal lands in the history and can be reverted like a curator's change.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime

from pydantic import BaseModel, Field

from evergraph.embed.base import Embedder
from evergraph.playbooks.apply import DeltaResult, apply_deltas
from evergraph.playbooks.deltas import MergeOp, RemoveOp
from evergraph.playbooks.models import Playbook, id_number
from evergraph.playbooks.vectors import bullet_vectors


class RefineConfig(BaseModel):
    dedup: bool = True
    # Cosine at or above which two bullets of a section are one. Measured with MiniLM on
    # hand-written finance rules: paraphrases score 0.62-0.89, different rules up to 0.99
    # ("Use the fiscal year, not the calendar year" and its reverse; PV vs FV formulas 0.87
    # to 0.93), so no threshold separates them. 0.95 folds only near-verbatim re-adds
    # (`apply` already rejects exact ones); two different rules are worse merged than kept.
    dedup_threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    prune: bool = True
    prune_margin: int = Field(default=2, ge=1)  # harmful must exceed helpful by this much
    prune_min_uses: int = Field(default=3, ge=1)  # verdicts needed before judging a bullet


def prune_ops(playbook: Playbook, config: RefineConfig) -> list[RemoveOp]:
    """REMOVE each bullet judged often enough whose harmful count leads by the margin."""
    return [
        RemoveOp(id=b.id, reason=f"harmful {b.harmful} vs helpful {b.helpful}")
        for b in playbook.bullets
        if b.uses >= config.prune_min_uses and b.harmful - b.helpful >= config.prune_margin
    ]


def dedup_ops(
    playbook: Playbook, embedder: Embedder, config: RefineConfig, skip: Set[str] = frozenset()
) -> list[MergeOp]:
    """One MERGE per group of near-duplicates within a section, kept into its most useful
    (then oldest) bullet so counters add up on the bullet generators already cite."""
    ops: list[MergeOp] = []
    for section in playbook.sections:
        bullets = [b for b in playbook.in_section(section) if b.id not in skip]
        vectors = bullet_vectors(bullets, embedder)
        sims = vectors @ vectors.T
        groups: list[list[int]] = []
        for i in sorted(range(len(bullets)), key=lambda i: (-bullets[i].usefulness, i)):
            home = next((g for g in groups if sims[g[0], i] >= config.dedup_threshold), None)
            if home is None:
                groups.append([i])
            else:
                home.append(i)
        for group in (g for g in groups if len(g) > 1):
            keep = bullets[group[0]].id
            ids = sorted((bullets[i].id for i in group), key=id_number)
            reason = f"near-duplicates of {keep} (cosine >= {config.dedup_threshold})"
            ops.append(MergeOp(ids=ids, keep=keep, reason=reason))
    return ops


def refine(
    playbook: Playbook,
    embedder: Embedder,
    *,
    now: datetime,
    config: RefineConfig | None = None,
) -> DeltaResult:
    """Prune, then de-duplicate what is left, as one batch with origin "refine"."""
    config = config or RefineConfig()
    removals = prune_ops(playbook, config) if config.prune else []
    skip = {op.id for op in removals}
    merges = dedup_ops(playbook, embedder, config, skip) if config.dedup else []
    return apply_deltas(playbook, [*removals, *merges], now=now, origin="refine")
