"""Brute-force cosine search over float32 embedding BLOBs, held in memory.

A normalised matrix times the query is a few milliseconds at 100k rows, with no extension
and nothing to keep in sync on disk. The matrix is built on first search; a write to the
table updates the rows it wrote (`update`, so that integrating document after document does
not reread every embedding each time), and the matrix is dropped when rows are deleted, a
transaction rolls back, or another connection commits (`PRAGMA data_version`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from evergraph.graph.store.shared import dimension_mismatch

Matrix = npt.NDArray[np.float32]


def _normalised(m: Matrix) -> Matrix:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


class _Block:
    """All embeddings of one dimension (a store can hold two while an embedder is swapped),
    in arrays with room to grow; rows [0, size) are in use."""

    def __init__(self, dim: int, keys: list[int], blobs: list[bytes], labels: list[str | None]):
        self.dim = dim
        self.size = len(keys)
        self.keys = np.array(keys, dtype=np.int64)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim)
        self.vectors = _normalised(vectors) if self.size else np.zeros((0, dim), np.float32)
        self.code: dict[str | None, int] = {}  # labels as small integers: fast to compare
        self.labels = np.array([self._code(label) for label in labels], dtype=np.int32)
        self.position = {k: i for i, k in enumerate(keys)}

    def _code(self, label: str | None) -> int:
        return self.code.setdefault(label, len(self.code))

    def rows(self, label: str | None) -> npt.NDArray[np.intp]:
        """Positions of the rows in use with `label`."""
        code = self.code.get(label)
        return (
            np.array([], np.intp)
            if code is None
            else np.flatnonzero(self.labels[: self.size] == code)
        )

    def put(self, keys: list[int], vectors: Matrix, labels: list[str | None]) -> None:
        """Replace or add rows (vectors not normalised yet)."""
        new = [k for k in dict.fromkeys(keys) if k not in self.position]
        if self.size + len(new) > len(self.keys):
            room = max(2 * (self.size + len(new)), 64)
            self.keys = np.resize(self.keys, room)
            self.vectors = np.resize(self.vectors, (room, self.dim))
            self.labels = np.resize(self.labels, room)
        for k in new:
            self.keys[self.size] = k
            self.position[k] = self.size
            self.size += 1
        rows = [self.position[k] for k in keys]
        self.vectors[rows] = _normalised(vectors)
        self.labels[rows] = [self._code(label) for label in labels]

    def remove(self, key: int) -> None:
        i = self.position.pop(key, None)
        if i is None:
            return
        last = self.size - 1
        if i != last:  # the last row takes the free place
            self.keys[i], self.vectors[i], self.labels[i] = (
                self.keys[last],
                self.vectors[last],
                self.labels[last],
            )
            self.position[int(self.keys[i])] = i
        self.size = last


Rows = tuple[list[int], list[bytes], list[str | None]]  # keys, embedding BLOBs, labels


def _by_dimension(rows: Iterable[Sequence[Any]]) -> dict[int | None, Rows]:
    """(key, blob, label) rows grouped by their embedding's dimension (None: no embedding)."""
    grouped: defaultdict[int | None, Rows] = defaultdict(lambda: ([], [], []))
    for key, blob, label in rows:
        keys, blobs, labels = grouped[None if blob is None else len(blob) // 4]
        keys.append(key)
        blobs.append(blob)
        labels.append(label)
    return grouped


class VectorIndex:
    """Embeddings of `table` (its `embedding` BLOBs by rowid), labelled by the `label` SQL
    expression (e.g. the entity type)."""

    def __init__(self, conn: sqlite3.Connection, table: str, label: str = "NULL") -> None:
        self._conn = conn
        self._sql = f"SELECT rowid, embedding, {label} FROM {table}"
        self._blocks: dict[int, _Block] | None = None
        self._data_version = -1

    def invalidate(self) -> None:
        self._blocks = None

    def _load(self) -> dict[int, _Block]:
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if self._blocks is not None and version == self._data_version:
            return self._blocks
        grouped = _by_dimension(self._conn.execute(self._sql))
        self._blocks = {dim: _Block(dim, *rows) for dim, rows in grouped.items() if dim is not None}
        self._data_version = version
        return self._blocks

    def update(self, ids: Sequence[str]) -> None:
        """The rows with these ids were written: refresh them in a loaded matrix."""
        if self._blocks is None:
            return
        rows = self._conn.execute(
            f"{self._sql} WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)
        )
        for dim, (keys, blobs, labels) in _by_dimension(rows).items():
            for other, block in self._blocks.items():
                if other != dim and block.position:  # moved to another dimension, or gone
                    for key in keys:
                        block.remove(key)
            if dim is not None:
                matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim)
                self._blocks.setdefault(dim, _Block(dim, [], [], [])).put(keys, matrix, labels)

    def search(
        self, vector: Sequence[float], k: int, *, label: str | None = None
    ) -> list[tuple[int, float]]:
        """The k keys most similar to `vector` (cosine, best first), among rows with `label`."""
        blocks = {dim: b for dim, b in self._load().items() if b.size}
        query = np.asarray(vector, dtype=np.float32)
        block = blocks.get(query.shape[0])
        if block is None:
            if blocks:
                raise dimension_mismatch(query.shape[0], blocks)
            return []
        n = block.size
        scores = block.vectors[:n] @ _normalised(query)
        candidates = np.arange(n) if label is None else block.rows(label)
        k = min(k, len(candidates))
        if k <= 0:
            return []
        top = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(block.keys[i]), float(scores[i])) for i in top]

    def search_many(
        self, vectors: Matrix, k: int, *, labels: Sequence[str | None], min_score: float
    ) -> list[list[tuple[int, float]]]:
        """`search` for each row of `vectors` (with its label), one matrix product per label;
        hits below `min_score` are left out."""
        out: list[list[tuple[int, float]]] = [[] for _ in labels]
        blocks = {dim: b for dim, b in self._load().items() if b.size}
        queries = np.asarray(vectors, dtype=np.float32).reshape(len(labels), -1)
        block = blocks.get(queries.shape[1])
        if block is None:
            if blocks and len(labels):
                raise dimension_mismatch(queries.shape[1], blocks)
            return out
        by_label: dict[str | None, list[int]] = {}
        for i, label in enumerate(labels):
            by_label.setdefault(label, []).append(i)
        for label, asked in by_label.items():
            rows = np.arange(block.size) if label is None else block.rows(label)
            kk = min(k, len(rows))
            if kk <= 0:
                continue
            # einsum, not BLAS: a few hundred queries are faster without BLAS threads, which
            # spin against each other on a busy machine (measured 50x slower under load)
            scores = np.einsum("qd,nd->qn", _normalised(queries[asked]), block.vectors[rows])
            tops = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            for i, row, top in zip(asked, scores, tops, strict=True):
                top = top[np.argsort(-row[top], kind="stable")]
                out[i] = [
                    (int(block.keys[rows[j]]), float(row[j])) for j in top if row[j] >= min_score
                ]
        return out
