from pathlib import Path

import numpy as np

from evergraph.embed.cache import VectorCache, embed_with_cache
from evergraph.embed.testing import HashingEmbedder


def test_cache_computes_each_distinct_text_once(tmp_path: Path) -> None:
    inner = HashingEmbedder(16)
    seen: list[list[str]] = []

    def compute(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return inner.embed(texts)

    cache = VectorCache(tmp_path / "v.db")
    first = embed_with_cache(["a b", "c", "a b"], model="m", dim=16, compute=compute, cache=cache)
    assert seen == [["a b", "c"]]
    assert np.allclose(first[0], first[2])
    again = embed_with_cache(["c", "a b", "d"], model="m", dim=16, compute=compute, cache=cache)
    assert seen[-1] == ["d"]
    assert np.allclose(again[0], first[1]) and np.allclose(again[1], first[0])


def test_cache_is_per_model_and_survives_reopen(tmp_path: Path) -> None:
    inner = HashingEmbedder(8)
    calls: list[str] = []

    def compute(texts: list[str]) -> np.ndarray:
        calls.extend(texts)
        return inner.embed(texts)

    embed_with_cache(["x"], model="m1", dim=8, compute=compute, cache=VectorCache(tmp_path / "v"))
    embed_with_cache(["x"], model="m1", dim=8, compute=compute, cache=VectorCache(tmp_path / "v"))
    embed_with_cache(["x"], model="m2", dim=8, compute=compute, cache=VectorCache(tmp_path / "v"))
    assert calls == ["x", "x"]


def test_hashing_embedder_rows_are_unit_or_zero() -> None:
    vecs = HashingEmbedder(32).embed(["the cat", "", "the dog"])
    assert vecs.shape == (3, 32)
    assert np.isclose(np.linalg.norm(vecs[0]), 1.0) and not vecs[1].any()
    assert vecs[0] @ vecs[2] > 0  # "the" is shared
