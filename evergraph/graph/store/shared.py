"""What every store backend shares, defined once so that the backends cannot drift apart.

Times are integers of microseconds since the epoch in every backend (exact, so comparisons in
SQL or Cypher agree with `Fact.holds` to the microsecond); the as-of predicate, full-text
terms, change-log payloads and the neighbourhood walk are the same code for SQLite and Neo4j.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

import pydantic_core

from evergraph.errors import StoreError, UsageError
from evergraph.graph.models import Evidence, FactStatus, utcnow

R = TypeVar("R")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TERM = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 64  # a pasted page as a query should not become a 1000-way OR


# Both run for every time of every record written or read, and the same few times recur (a
# batch's `now`, a document's date): cached, a tenth of the cost. Pure: datetimes are values.
@lru_cache(maxsize=1 << 16)
def to_us(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # as the models do: naive means UTC
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


@lru_cache(maxsize=1 << 16)
def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def to_json(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


_STATUS_VALUES: dict[str, str] = {s: s.value for s in FactStatus}  # members hash as values


def status_value(value: FactStatus | str) -> str:
    """Every fact written is encoded with this: a lookup (an enum's `.value` is a property)."""
    found = _STATUS_VALUES.get(value) if isinstance(value, str) else None
    return FactStatus(value).value if found is None else found


# Names recur in every document that mentions them and in every write of their entity: each
# is folded once (a third of entity resolution's time went to normalising the same names).
@lru_cache(maxsize=1 << 17)
def name_key(name: str) -> str:
    """Case-insensitive key for names: Unicode case folding (SQLite NOCASE folds only ASCII)."""
    return unicodedata.normalize("NFC", name.strip()).casefold()


def query_terms(text: str) -> list[str]:
    """The words of a full-text query: runs of letters and digits, lower-cased, each once.

    Only letters and digits survive, so no term can carry query syntax (quotes, operators,
    field prefixes) into FTS5 or Lucene.
    """
    terms = dict.fromkeys(t.lower() for t in _TERM.findall(text))
    return list(terms)[:MAX_QUERY_TERMS]


def dimension_mismatch(query: int, stored: Iterable[int]) -> UsageError:
    return UsageError(
        f"the query vector has {query} dimensions but the stored embeddings have "
        f"{', '.join(map(str, sorted(stored)))}",
        fix="embed queries with the model that embedded the store, or re-embed the store",
    )


def holds_predicate(
    as_of: datetime | None, recorded_at: datetime | None, *, field: str, param: str
) -> tuple[str, dict[str, Any]]:
    """`Fact.holds(as_of, recorded_at)` as a boolean expression in the syntax SQL and Cypher
    share; `field` prefixes the fact's fields ("" for SQL columns, "f." in Cypher), `param`
    marks a parameter (":" in SQL, "$" in Cypher). Parameters: rec_us, as_of_us."""
    f, p = field, param
    if recorded_at is not None:
        clauses = [
            f"{f}recorded_at <= {p}rec_us",
            f"({f}retired_at IS NULL OR {f}retired_at > {p}rec_us)",
        ]
    elif as_of is None:
        clauses = [f"{f}retired_at IS NULL"]
    else:  # retired with validity closed stays history for as-of reads
        clauses = [f"({f}retired_at IS NULL OR {f}valid_to IS NOT NULL)"]
    clauses += [
        f"({f}valid_from IS NULL OR {f}valid_from <= {p}as_of_us)",
        f"({f}valid_to IS NULL OR {f}valid_to > {p}as_of_us)",
    ]
    params = {"rec_us": to_us(recorded_at), "as_of_us": to_us(as_of or utcnow())}
    return " AND ".join(clauses), params


def check_history(history: bool, as_of: datetime | None, recorded_at: datetime | None) -> None:
    """`facts_about(history=True)` is every fact: a time to hold at would contradict it."""
    if history and (as_of is not None or recorded_at is not None):
        raise UsageError(
            "history=True returns every fact whatever its time; it takes no as_of or recorded_at",
            fix="ask either for the whole history or for the facts as of a time",
        )


def walk(
    seeds: Sequence[str],
    hops: int,
    fetch: Callable[[list[str]], Iterable[R]],
    ends: Callable[[R], tuple[str, str, str | None]],
) -> list[R]:
    """Breadth-first over facts, one `fetch` per hop (the facts touching the frontier
    entities); `ends` gives a fetched fact's (id, subject, object). Each fact once."""
    seen = set(seeds)
    frontier = list(seen)
    found: dict[str, R] = {}
    for _ in range(hops):
        if not frontier:
            break
        rows = fetch(frontier)
        frontier = []
        for row in rows:
            fact_id, subject, obj = ends(row)
            if fact_id in found:
                continue
            found[fact_id] = row
            for end in (subject, obj):
                if end is not None and end not in seen:
                    seen.add(end)
                    frontier.append(end)
    return list(found.values())


class Nesting:
    """The rules of `transaction()` inside `transaction()`, the same in every backend: an
    inner block joins the outer transaction; if any block raises, the whole outer transaction
    rolls back, even when the caller catches that error in between, and writes after it are
    refused (they would only be rolled back, or worse, commit on their own)."""

    def __init__(self) -> None:
        self.depth = 0
        self.doomed = False

    @contextmanager
    def join(self) -> Iterator[None]:
        """An inner block, or one write, inside the open transaction."""
        if self.doomed:
            raise StoreError(
                "this transaction already failed and was rolled back",
                fix="let the first error propagate out of the transaction, then retry",
            )
        self.depth += 1
        try:
            yield
        except BaseException:
            self.doomed = True
            raise
        finally:
            self.depth -= 1

    @contextmanager
    def outer(self) -> Iterator[None]:
        """The outermost block: raises at its end if a block inside it failed."""
        self.depth, self.doomed = 1, False
        try:
            yield
            if self.doomed:
                raise StoreError(
                    "the transaction was rolled back because a block inside it failed",
                    fix="let the first error propagate out of the transaction, then retry",
                )
        finally:
            self.depth = 0


# -- change-log payloads (op "retire" and "add" evidence) ----------------------------------


def retire_payload(
    reason: str, status: FactStatus | str, at: datetime, valid_to: datetime | None
) -> dict[str, Any]:
    return {
        "reason": reason,
        "status": status_value(status),
        "at": iso(at),
        "valid_to": iso(valid_to),
    }


def evidence_payload(evidence: Evidence) -> dict[str, Any]:
    return {"source_id": evidence.source_id, "chunk_id": evidence.chunk_id}
