"""kill -9 in the middle of bulk writes loses no committed batch and leaves no partial one.

A child process (crash_writer.py) writes batches, one transaction each, and reports every
commit on stdout; we kill it at a random moment inside a later batch, reopen the store and
check it batch by batch. Three kills on the same store: recovery must also survive recovery.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evergraph.graph.store.sqlite import SQLiteGraphStore

from .crash_writer import CHANGES, CHUNKS, ENTITIES, FACTS

WRITER = Path(__file__).with_name("crash_writer.py")
FULL_BATCH = (1, CHUNKS, ENTITIES, FACTS)


def run_and_kill(store: Path, first: int, rng: random.Random) -> int:
    """Run the writer from batch `first`; SIGKILL it inside a batch. The last reported commit."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(store), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    wanted = rng.randint(2, 4)  # commits to see before the kill
    committed, started = first - 1, 0.0
    durations: list[float] = []
    try:
        for line in child.stdout:
            word, n = line.split()
            if word == "writing":
                started = time.perf_counter()
                if committed - first + 1 >= wanted:
                    # most of a batch is its transaction: aim anywhere inside it
                    time.sleep(rng.uniform(0, 1.2) * statistics.median(durations))
                    break
            else:
                committed = int(n)
                durations.append(time.perf_counter() - started)
        else:
            pytest.fail(f"writer exited early: {child.stderr.read()}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return committed


def batch_counts(conn: sqlite3.Connection) -> dict[str, tuple[int, ...]]:
    tables = [
        "SELECT id, count(*) FROM sources GROUP BY id",
        "SELECT source_id, count(*) FROM chunks GROUP BY source_id",
        "SELECT type, count(*) FROM entities GROUP BY type",
        "SELECT predicate, count(*) FROM facts GROUP BY predicate",
    ]
    per_table = [dict(conn.execute(sql).fetchall()) for sql in tables]
    tags = set().union(*per_table)
    return {tag: tuple(counts.get(tag, 0) for counts in per_table) for tag in tags}


def check_store(path: Path, reported: int) -> int:
    """Assert the store is whole and batches 0..M are complete, M >= reported; return M."""
    with SQLiteGraphStore(path) as store:  # opens cleanly (WAL recovery)
        stats = store.stats()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
        counts = batch_counts(conn)
    finally:
        conn.close()
    assert all(c == FULL_BATCH for c in counts.values()), counts  # none partial
    present = sorted(int(tag.removeprefix("batch-")) for tag in counts)
    last = present[-1]
    # The child may commit one batch more than it managed to report before the kill.
    assert present == list(range(last + 1))
    assert reported <= last <= reported + 1
    assert stats.changes == CHANGES * len(present)  # the log is atomic with the data
    return last


@pytest.mark.timeout(300)
def test_kill_9_during_bulk_writes(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(20240601)
    last = -1
    for _ in range(3):
        reported = run_and_kill(path, last + 1, rng)
        assert reported > last
        last = check_store(path, reported)
