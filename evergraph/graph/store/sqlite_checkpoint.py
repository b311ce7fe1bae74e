"""WAL checkpoints on a thread of their own, so that a commit does not wait for one.

SQLite copies the write-ahead log back into the database file (a checkpoint) inside the COMMIT
that crosses `wal_autocheckpoint`: the writer stops for it, 60-70 ms every few batches in
bench_integrate.py, a tenth of the integration time. Here the writer only looks at the log's
size after its commit and, past `pages`, wakes a thread that runs a PASSIVE checkpoint on its
own connection: it never blocks the writer or readers, and sqlite3 releases the GIL while it
copies, so the copy runs on another core while the writer goes on.

The writer keeps SQLite's own autocheckpoint at `BACKSTOP` times the threshold: should this
thread fall behind, the log still stops growing there.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)
PAGE = 4096  # SQLite's default page size: the threshold in bytes of log
BACKSTOP = 4


class Checkpointer:
    """Checkpoints one database's WAL in the background; started at the first large log."""

    def __init__(self, path: str, *, pages: int) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._limit = pages * PAGE
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Call after each commit: a stat of the log, and a wake-up past the threshold."""
        try:
            size = os.stat(self._wal).st_size
        except OSError:  # no log (yet): nothing to copy
            return
        if size < self._limit:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"checkpoint {self._path}", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:  # the next wake-up tries again; the backstop holds
                    log.warning("background checkpoint of %s failed: %s", self._path, e)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread (after the copy it is making, if any); closing the last connection
        then checkpoints what is left."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
