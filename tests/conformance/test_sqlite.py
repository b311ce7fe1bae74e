"""The store conformance suite on the embedded SQLite backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.sqlite import SQLiteGraphStore

from .store_suite import StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[GraphStore]:
        with SQLiteGraphStore(tmp_path / "store.db") as store:
            yield store
