"""Playbooks in the embedded store: SQL over a connection on which the caller holds the
transaction (reads under the store's lock, saves inside BEGIN IMMEDIATE).

Bullets are rows, their embeddings float32 BLOBs as for chunks; each history entry is one JSON
document keyed by (playbook, seq), as it is only ever read whole and in order. User data only
travels in parameters.
"""

from __future__ import annotations

import json
import sqlite3

from evergraph.graph.store.playbook_checks import bullet_writes, check_save
from evergraph.graph.store.sqlite_codec import codec
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Bullet, Playbook, id_number

BULLETS = codec(
    Bullet, "playbook_bullets", times=("created_at", "updated_at"), vectors=("embedding",)
)
_UPSERT_BULLET = (
    f"INSERT INTO playbook_bullets (playbook, {BULLETS.select}) "
    f"VALUES (?, {', '.join('?' for _ in BULLETS.columns)}) "
    "ON CONFLICT (playbook, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in BULLETS.columns if c != "id")
)
_FLOAT32 = 4  # bytes a dimension of a stored embedding


def get(conn: sqlite3.Connection, name: str) -> Playbook | None:
    row = conn.execute(
        "SELECT sections, version, next_id FROM playbooks WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    rows = conn.execute(
        f"SELECT {BULLETS.select} FROM playbook_bullets WHERE playbook = ?", (name,)
    ).fetchall()
    bullets = sorted((BULLETS.record(r) for r in rows), key=lambda b: id_number(b.id))
    return Playbook(
        name=name, sections=json.loads(row[0]), bullets=bullets, version=row[1], next_id=row[2]
    )


def save(conn: sqlite3.Connection, revision: Revision, *, expected_version: int) -> None:
    """The caller's transaction makes the version check and the writes one atomic step. Of
    the stored bullets only ids and blob lengths are read, for `bullet_writes`: no decoding."""
    pb = revision.playbook
    row = conn.execute("SELECT version FROM playbooks WHERE name = ?", (pb.name,)).fetchone()
    stored = None if row is None else int(row[0])
    check_save(revision, stored_version=stored, expected_version=expected_version)
    dims = conn.execute(
        "SELECT id, length(embedding) FROM playbook_bullets WHERE playbook = ?", (pb.name,)
    )
    writes = bullet_writes(revision, {i: n and n // _FLOAT32 for i, n in dims})
    conn.execute(
        "INSERT INTO playbooks (name, sections, version, next_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET sections = excluded.sections, "
        "version = excluded.version, next_id = excluded.next_id",
        (pb.name, json.dumps(pb.sections), pb.version, pb.next_id),
    )
    conn.executemany(
        "DELETE FROM playbook_bullets WHERE playbook = ? AND id = ?",
        ((pb.name, i) for i in writes.removed),
    )
    conn.executemany(
        _UPSERT_BULLET, ([pb.name, *BULLETS.row(b)] for b in (*writes.added, *writes.changed))
    )
    conn.executemany(
        "INSERT INTO playbook_history (playbook, seq, entry) VALUES (?, ?, ?)",
        ((pb.name, e.seq, e.model_dump_json()) for e in revision.entries),
    )


def history(conn: sqlite3.Connection, name: str, *, since: int) -> list[HistoryEntry]:
    rows = conn.execute(
        "SELECT entry FROM playbook_history WHERE playbook = ? AND seq > ? ORDER BY seq",
        (name, since),
    )
    return [HistoryEntry.model_validate_json(r[0]) for r in rows]


def names(conn: sqlite3.Connection) -> list[str]:
    return sorted(r[0] for r in conn.execute("SELECT name FROM playbooks"))
