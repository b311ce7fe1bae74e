"""Cost of saving a playbook after one operation, against rewriting its whole state.

    .venv/bin/python benchmarks/bench_playbook_save.py --bullets 100 1000

A playbook of N bullets (embeddings of --dim floats, as an embedder leaves them) is saved in
the embedded store; then --repeats times one TAG op is applied and the revision saved (what
`PlaybookMemory.record_outcome` does after a task). The baseline, in the same run, is a save
of the same state with no history entries, which rewrites every bullet. Prints the median
milliseconds of each and their ratio; a save should cost the bullets it touches, not N.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.playbooks.apply import apply_deltas
from evergraph.playbooks.deltas import AddOp, TagOp
from evergraph.playbooks.history import Revision
from evergraph.playbooks.models import Playbook

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_playbook(n: int, dim: int, rng: random.Random) -> Revision:
    adds = [AddOp(section="strategies", content=f"Lesson {i}: check step {i}.") for i in range(n)]
    done = apply_deltas(Playbook(name="bench", sections=["strategies"]), adds, now=NOW)
    bullets = [
        b.model_copy(update={"embedding": [rng.uniform(-1, 1) for _ in range(dim)] or None})
        for b in done.playbook.bullets
    ]
    return Revision(
        playbook=done.playbook.model_copy(update={"bullets": bullets}), entries=done.entries
    )


def save_ms(store: SQLiteGraphStore, revision: Revision, *, expected_version: int) -> float:
    began = time.perf_counter()
    store.save_playbook(revision, expected_version=expected_version)
    return (time.perf_counter() - began) * 1000


def measure(path: Path, n: int, dim: int, repeats: int) -> tuple[float, float]:
    """Median ms of a one-op save and of a full-state save; the op is applied untimed."""
    rng = random.Random(n)
    one_op, full = [], []
    with SQLiteGraphStore(path) as store:
        start = make_playbook(n, dim, rng)
        store.save_playbook(start, expected_version=0)
        pb = start.playbook
        for _ in range(repeats):
            done = apply_deltas(pb, [TagOp(id=rng.choice(pb.bullets).id, tag="helpful")], now=NOW)
            one_op.append(save_ms(store, done, expected_version=pb.version))
            pb = done.playbook
            full.append(
                save_ms(store, Revision(playbook=pb, entries=[]), expected_version=pb.version)
            )
    return statistics.median(one_op), statistics.median(full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bullets", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"{'bullets':>8} {'one-op save ms':>15} {'full-state save ms':>19} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.bullets:
            one, full = measure(Path(tmp) / f"pb{n}.db", n, args.dim, args.repeats)
            print(f"{n:>8} {one:>15.2f} {full:>19.2f} {one / full:>7.3f}")


if __name__ == "__main__":
    main()
