"""Running work in Neo4j transactions with the embedded store's rules.

`transaction()` is one explicit Neo4j transaction that nested blocks join (`Nesting`); any
write outside one is its own transaction. A whole transaction that fails on a transient error
(deadlock, leader switch, dropped connection) is retried with tenacity, never half of one; an
explicit `transaction()` block cannot be replayed, so only its start is retried. Every write
transaction starts and ends with the store's hooks (`_begin_write`, `_before_commit`), and
`_settled` hears whether it committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from threading import RLock
from typing import Any, TypeVar

from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, Session, Transaction
from neo4j.exceptions import DriverError, Neo4jError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from evergraph.graph.store.cypher import Statement
from evergraph.graph.store.neo4j_errors import is_transient, translate
from evergraph.graph.store.shared import Nesting

T = TypeVar("T")
Rows = list[dict[str, Any]]
Work = Callable[[Transaction], T]


def run(tx: Transaction | Session, statement: Statement) -> Rows:
    return tx.run(statement.text, statement.params).data()


class Neo4jTransactions:
    """Sessions, transactions, retries and error translation for one database."""

    def __init__(self, driver: Driver, database: str | None, location: str, attempts: int) -> None:
        self.location = location
        self._driver = driver
        self._database = database
        self._attempts = attempts
        self._lock = RLock()  # one thread at a time, as with the SQLite store
        self._nesting = Nesting()
        self._tx: Transaction | None = None
        self._bookmarks = GraphDatabase.bookmark_manager()  # read your writes across sessions

    # -- hooks --------------------------------------------------------------------------------

    def _begin_write(self, tx: Transaction) -> None:
        """First thing in every write transaction."""

    def _before_commit(self, tx: Transaction) -> None:
        """Last thing in every write transaction; raising rolls it back."""

    def _settled(self, committed: bool) -> None:
        """After a write transaction committed or rolled back."""

    # -- plumbing -------------------------------------------------------------------------------

    def _session(self, *, write: bool) -> Session:
        return self._driver.session(
            database=self._database,
            default_access_mode=WRITE_ACCESS if write else READ_ACCESS,
            bookmark_manager=self._bookmarks,
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (Neo4jError, DriverError) as e:
            mapped = translate(e, self.location)
            if mapped is None:
                raise
            raise mapped from e

    def _retrying(self, fn: Callable[[], T]) -> T:
        retryer = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )
        with self._errors():
            return retryer(fn)

    def _autocommit(self, statements: Sequence[Statement]) -> list[Rows]:
        """Schema commands and index procedures, which must not run in a data transaction."""

        def attempt() -> list[Rows]:
            with self._session(write=True) as session:
                return [run(session, s) for s in statements]

        return self._retrying(attempt)

    def _once(self, work: Work[T], *, write: bool) -> T:
        with self._session(write=write) as session, session.begin_transaction() as tx:
            if write:
                self._begin_write(tx)
            result = work(tx)
            if write:
                self._before_commit(tx)
            return result  # leaving the block commits

    def _begin_explicit(self) -> tuple[Session, Transaction]:
        session = self._session(write=True)
        try:
            tx = session.begin_transaction()
            self._begin_write(tx)
        except BaseException:
            session.close()
            raise
        return session, tx

    # -- the three ways in ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One explicit Neo4j transaction; nested blocks join it (see `Nesting`)."""
        with self._lock:
            if self._tx is not None:
                with self._nesting.join():
                    yield
                return
            session, tx = self._retrying(self._begin_explicit)  # nothing done yet: safe
            self._tx = tx
            try:
                with self._nesting.outer():
                    yield
                with self._errors():
                    self._before_commit(tx)
                    tx.commit()
            except BaseException:
                self._settled(committed=False)
                with suppress(Exception):  # the server rolls back a broken one by itself
                    tx.close()
                raise
            finally:
                self._tx = None
                with suppress(Exception):
                    session.close()
            self._settled(committed=True)

    def _write(self, work: Work[T]) -> T:
        with self._lock:
            if self._tx is not None:
                with self._nesting.join(), self._errors():
                    return work(self._tx)
            try:
                result = self._retrying(partial(self._once, work, write=True))
            except BaseException:
                self._settled(committed=False)
                raise
            self._settled(committed=True)
            return result

    def _read(self, work: Work[T]) -> T:
        with self._lock:
            if self._tx is not None:  # read your own uncommitted writes
                with self._errors():
                    return work(self._tx)
            return self._retrying(partial(self._once, work, write=False))
