"""Bullet embeddings: reuse the cached vector when it fits the embedder, compute the rest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evergraph.embed.base import Embedder, Vectors
from evergraph.playbooks.models import Bullet, Playbook


def bullet_vectors(bullets: Sequence[Bullet], embedder: Embedder) -> Vectors:
    """One unit row per bullet, in order; only bullets without a usable cache are embedded."""
    out = np.zeros((len(bullets), embedder.dim), dtype=np.float32)
    missing = [i for i, b in enumerate(bullets) if _cached(b, embedder) is None]
    if missing:
        out[missing] = embedder.embed([bullets[i].content for i in missing])
    for i, b in enumerate(bullets):
        cached = _cached(b, embedder)
        if cached is not None:
            out[i] = cached
    return out


def with_embeddings(playbook: Playbook, embedder: Embedder) -> Playbook:
    """The playbook with every bullet's vector cached, ready to be stored."""
    vectors = bullet_vectors(playbook.bullets, embedder)
    bullets = [
        b.model_copy(update={"embedding": [float(x) for x in v]})
        for b, v in zip(playbook.bullets, vectors, strict=True)
    ]
    return playbook.model_copy(update={"bullets": bullets})


def _cached(bullet: Bullet, embedder: Embedder) -> list[float] | None:
    """A vector of another dimension came from another embedder and is ignored."""
    emb = bullet.embedding
    return emb if emb is not None and len(emb) == embedder.dim else None
