"""The rules of `save_playbook`, checked the same way by every backend.

A backend reads the stored version (and each stored bullet's id and embedding length) inside
its write transaction, calls `check_save`, and only then writes what `bullet_writes` names: a
conflict or a malformed revision leaves the store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from evergraph.errors import PlaybookConflictError, UsageError
from evergraph.playbooks.history import Revision
from evergraph.playbooks.models import Bullet


def check_save(revision: Revision, *, stored_version: int | None, expected_version: int) -> None:
    """`stored_version` is None when no playbook of that name exists. A stored playbook still
    at version 0 (saved empty) counts as none: expecting 0 must not fail on it forever."""
    pb = revision.playbook
    current = stored_version or 0
    if current and expected_version == 0:
        raise PlaybookConflictError(
            f"playbook {pb.name!r} already exists (version {current})",
            fix="read it and apply your changes to it, or save under another name",
        )
    if current != expected_version:
        raise PlaybookConflictError(
            f"playbook {pb.name!r} is at version {current}, not {expected_version}: "
            "another writer saved it since it was read",
            fix="read the playbook again and re-apply the changes to it",
        )
    seqs = [e.seq for e in revision.entries]
    wanted = list(range(expected_version + 1, pb.version + 1))
    if seqs != wanted:
        raise UsageError(
            f"history entries {seqs} do not take playbook {pb.name!r} from version "
            f"{expected_version} to {pb.version}",
            fix="save the Revision that apply_deltas or revert returned, with the version "
            "the playbook had when it was read",
        )


class BulletWrites(NamedTuple):
    added: list[Bullet]  # not stored yet
    changed: list[Bullet]  # stored, to be overwritten
    removed: list[str]  # ids of stored bullets the playbook no longer holds


def bullet_writes(revision: Revision, stored: Mapping[str, int | None]) -> BulletWrites:
    """The bullets a save writes: those its entries touched, so a one-op update costs one row,
    not the playbook.

    `stored` maps each stored bullet's id to its embedding's length (None: no embedding).
    Bullets missing from the store are added and stored ones the playbook lost are removed,
    whatever the entries say. A save without entries is a state refresh (cached embeddings) and
    rewrites every bullet. An untouched bullet is rewritten too when it carries an embedding
    the stored row lacks or has at another length: agents embed every bullet before a save,
    and dropping those vectors would have each save embed them again.
    """
    pb = revision.playbook
    touched = {b.id for e in revision.entries for b in (*e.before, *e.after)}
    every = not revision.entries

    def rewrite(b: Bullet) -> bool:
        if every or b.id in touched:
            return True
        return b.embedding is not None and stored[b.id] != len(b.embedding)

    kept = {b.id for b in pb.bullets}
    return BulletWrites(
        added=[b for b in pb.bullets if b.id not in stored],
        changed=[b for b in pb.bullets if b.id in stored and rewrite(b)],
        removed=[i for i in stored if i not in kept],
    )
