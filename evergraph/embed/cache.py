"""On-disk vector cache keyed by (model, sha256(text)): re-embedding a corpus is free."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from evergraph.embed.base import Vectors


def text_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x1f{text}".encode()).hexdigest()


class VectorCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")

    def get(self, keys: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part
                ).fetchall()
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put(self, items: dict[str, Vectors]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def embed_with_cache(
    texts: Sequence[str],
    *,
    model: str,
    dim: int,
    compute: Callable[[list[str]], Vectors],
    cache: VectorCache | None,
) -> Vectors:
    """Embed `texts`, computing only those not yet cached (each distinct text once)."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    keys = [text_key(model, t) for t in texts]
    hits = cache.get(sorted(set(keys))) if cache is not None else {}
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in hits}
    if missing:
        fresh = compute(list(missing.values()))
        new = dict(zip(missing.keys(), fresh, strict=True))
        if cache is not None:
            cache.put(new)
        hits = {**hits, **new}
    for i, k in enumerate(keys):
        out[i] = hits[k]
    return out
