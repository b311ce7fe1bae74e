"""On-disk cache of raw LLM responses, keyed by a hash of the full request.

Re-running a batch job (or a test) must not pay for the same tokens twice, so every
successful HTTP response is stored under sha256(canonical JSON of everything that can change
the answer). SQLite in WAL mode lets several processes share one cache file; each `put` is
its own committed transaction, so a crash loses at most the response in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evergraph.errors import StoreError

# Part of every key: bump it when the meaning of a cached entry changes, and old rows are
# simply never hit again.
KEY_VERSION = 1


class RawChoice(BaseModel):
    """One choice as the server sent it, before any validation."""

    content: str | None
    finish_reason: str | None = "stop"


class RawResponse(BaseModel):
    """What is worth keeping of one chat-completion response."""

    choices: list[RawChoice]
    prompt_tokens: int = 0
    completion_tokens: int = 0


def request_key(request: Mapping[str, Any]) -> str:
    """sha256 of the request's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(
        {"key_version": KEY_VERSION, **request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """A SQLite file mapping request keys to raw responses.

    Calls are short synchronous SQLite statements; a lock makes one connection safe to share
    between asyncio tasks and threads, and WAL plus a busy timeout make it safe across
    processes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, so every put is committed on return.
            self._conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, response TEXT NOT NULL, created_at REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as e:
            raise self._error(e) from e

    def get(self, key: str) -> RawResponse | None:
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT response FROM responses WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as e:
            raise self._error(e) from e
        return None if row is None else RawResponse.model_validate_json(row[0])

    def put(self, key: str, response: RawResponse) -> None:
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO responses (key, response, created_at) VALUES (?, ?, ?)",
                    (key, response.model_dump_json(), time.time()),
                )
        except sqlite3.Error as e:
            raise self._error(e) from e

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _error(self, e: Exception) -> StoreError:
        return StoreError(
            f"the LLM response cache {self.path} failed: {e}",
            fix="delete that file (it only holds cached responses) "
            "or set EVERGRAPH_LLM__CACHE=false",
        )
