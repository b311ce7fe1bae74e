"""`HashingEmbedder`: a TEST DOUBLE for unit tests, not a product feature.

Hashes words into a fixed number of buckets so that texts sharing words are similar, with
no model to load. Real code paths use `SentenceTransformerEmbedder`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from evergraph.embed.base import Vectors

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1 << 16)
def _bucket(word: str, dim: int) -> int:
    """Words recur (benchmarks embed thousands of chunks): each is hashed once."""
    digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") % dim


class HashingEmbedder:
    name = "hashing-test-double"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            buckets = [_bucket(word, self.dim) for word in _WORD.findall(text.lower())]
            out[row] = np.bincount(buckets, minlength=self.dim)  # word counts, exact in float32
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)
