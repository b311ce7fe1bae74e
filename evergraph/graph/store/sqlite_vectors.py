"""Brute-force cosine search over float32 embedding BLOBs, held in memory.

A normalised matrix times the query is a few milliseconds at 100k rows, with no extension
and nothing to keep in sync on disk. The matrix is built on first search and dropped when
the store writes that table, or when another connection commits (`PRAGMA data_version`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from evergraph.graph.store.shared import dimension_mismatch

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Block:
    """All embeddings of one dimension (a store can hold two while an embedder is swapped)."""

    keys: npt.NDArray[np.int64]
    vectors: Matrix  # rows normalised to unit length (zero rows stay zero)
    labels: npt.NDArray[np.object_]


def _normalised(m: Matrix) -> Matrix:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


class VectorIndex:
    """Embeddings from `sql`, which selects (integer key, embedding BLOB, label) rows."""

    def __init__(self, conn: sqlite3.Connection, sql: str) -> None:
        self._conn = conn
        self._sql = sql
        self._blocks: dict[int, _Block] | None = None
        self._data_version = -1

    def invalidate(self) -> None:
        self._blocks = None

    def _load(self) -> dict[int, _Block]:
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if self._blocks is not None and version == self._data_version:
            return self._blocks
        grouped: dict[int, tuple[list[int], list[bytes], list[str | None]]] = {}
        for key, blob, label in self._conn.execute(self._sql):
            if blob is not None:
                keys, blobs, labels = grouped.setdefault(len(blob) // 4, ([], [], []))
                keys.append(key)
                blobs.append(blob)
                labels.append(label)
        self._blocks = {
            dim: _Block(
                np.array(keys, dtype=np.int64),
                _normalised(np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim)),
                np.array(labels, dtype=object),
            )
            for dim, (keys, blobs, labels) in grouped.items()
        }
        self._data_version = version
        return self._blocks

    def search(
        self, vector: Sequence[float], k: int, *, label: str | None = None
    ) -> list[tuple[int, float]]:
        """The k keys most similar to `vector` (cosine, best first), among rows with `label`."""
        blocks = self._load()
        query = np.asarray(vector, dtype=np.float32)
        block = blocks.get(query.shape[0])
        if block is None:
            if blocks:
                raise dimension_mismatch(query.shape[0], blocks)
            return []
        scores = block.vectors @ _normalised(query)
        candidates = (
            np.arange(len(scores)) if label is None else np.flatnonzero(block.labels == label)
        )
        k = min(k, len(candidates))
        if k <= 0:
            return []
        top = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(block.keys[i]), float(scores[i])) for i in top]
