"""What can go wrong talking to Neo4j, said so that users can fix it, and what is safe to retry."""

from __future__ import annotations

import re

from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    ConstraintError,
    DriverError,
    Forbidden,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from evergraph.errors import EvergraphError, StoreError, StoreFormatError, UsageError

MIN_VERSION = (5, 18)
_VERSION = re.compile(r"^(\d+)\.(\d+)")
_UPGRADE = "run Neo4j 5.26 LTS or later (the compose stack's: docker compose up -d neo4j)"
REFERENCES_FIX = (
    "write every record a record refers to (source, entity, fact, chunk) "
    "before or in the same transaction"
)


def check_version(version: str, location: str) -> None:
    """Neo4j 4 lacks the 5 syntax; 5.0-5.17 lack CREATE VECTOR INDEX or vector functions.
    CalVer releases (2025.01 and later) compare as newer."""
    match = _VERSION.match(version)
    if match is None:
        raise StoreFormatError(
            f"{location} reports an unknown Neo4j version {version!r}", fix=_UPGRADE
        )
    found = (int(match[1]), int(match[2]))
    if found[0] < 5:
        raise StoreFormatError(
            f"{location} runs Neo4j {version}; Evergraph speaks Neo4j 5 Cypher "
            "(constraint and index syntax, subqueries) and cannot use a 4.x server",
            fix=_UPGRADE,
        )
    if found < MIN_VERSION:
        raise StoreFormatError(
            f"{location} runs Neo4j {version}, which lacks the vector-index support Evergraph "
            "needs (CREATE VECTOR INDEX and vector.similarity.cosine, Neo4j 5.18 or later)",
            fix=_UPGRADE,
        )


def is_transient(error: BaseException) -> bool:
    """Retry what the driver itself calls retryable (deadlocks, leader switches, dropped
    connections), never an unknown commit outcome (IncompleteCommit is not retryable)."""
    return isinstance(error, TransientError | ServiceUnavailable | SessionExpired) and (
        error.is_retryable()
    )


def translate(error: Neo4jError | DriverError, location: str) -> EvergraphError | None:
    """A user-facing error for what users can act on; None for bugs (keep the traceback)."""
    if isinstance(error, AuthError):
        return UsageError(
            f"Neo4j at {location} refused the user name or password",
            fix="set them in EVERGRAPH_STORE (neo4j://USER:PASSWORD@HOST:7687) or in "
            "EVERGRAPH_NEO4J__USER and EVERGRAPH_NEO4J__PASSWORD (compose stack: user neo4j, "
            "password NEO4J_PASSWORD from .env)",
        )
    if isinstance(error, ServiceUnavailable | SessionExpired):
        if not error.is_retryable():
            return StoreError(
                f"the connection to Neo4j at {location} broke while committing: the last "
                "write may or may not have been applied",
                fix="run it again once Neo4j is reachable (writes are upserts: repeating "
                "one is harmless)",
            )
        return StoreError(
            f"cannot reach Neo4j at {location} ({error}); nothing of the failed operation "
            "was written",
            fix="start it (docker compose up -d neo4j) or correct the host and port in "
            "EVERGRAPH_STORE, then retry",
        )
    if isinstance(error, ConfigurationError):
        return UsageError(f"cannot use {location}: {error}", fix="correct EVERGRAPH_STORE")
    if not isinstance(error, Neo4jError):
        return None
    if error.code == "Neo.ClientError.Database.DatabaseNotFound":
        return UsageError(
            f"{location}: no such database on this server",
            fix="create it (CREATE DATABASE, Enterprise Edition) or drop the /DATABASE part "
            "of EVERGRAPH_STORE to use the server's default database",
        )
    if isinstance(error, Forbidden):
        return UsageError(
            f"the Neo4j user may not do this on {location}: {error.message}",
            fix="grant the user read, write and index privileges on the database",
        )
    if isinstance(error, TransientError):
        return StoreError(
            f"Neo4j at {location} kept failing transiently ({error.message}); "
            "the transaction was rolled back",
            fix="retry later, and check the server's load and logs",
        )
    if isinstance(error, ConstraintError):
        return UsageError(f"rejected by the store: {error.message}", fix=REFERENCES_FIX)
    return None
