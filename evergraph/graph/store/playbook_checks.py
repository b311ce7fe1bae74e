"""The rules of `save_playbook`, checked the same way by every backend.

A backend reads the stored version inside its write transaction, calls `check_save`, and only
then writes: a conflict or a malformed revision leaves the store untouched.
"""

from __future__ import annotations

from evergraph.errors import PlaybookConflictError, UsageError
from evergraph.playbooks.history import Revision


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
