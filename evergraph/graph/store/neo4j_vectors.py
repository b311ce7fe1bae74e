"""The Neo4j store's vector indexes: one per kind (chunk, entity), made from the data.

A Neo4j vector index has one dimension, so it can only be created once embeddings exist;
and Neo4j refuses schema changes in a transaction that writes data. So a write notes the
dimension of the first embeddings of a kind, and the index is created after that write has
committed (the index then populates from the stored nodes). Another dimension later is refused
with a clear error: a vector index silently skips vectors of the wrong size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evergraph.errors import UsageError
from evergraph.graph.store import cypher
from evergraph.graph.store.cypher import Statement, VectorLabel
from evergraph.graph.store.shared import dimension_mismatch

Autocommit = Callable[[Sequence[Statement]], list[list[dict[str, Any]]]]


class VectorIndexes:
    """The dimensions of the existing vector indexes, and of those to create."""

    def __init__(self, autocommit: Autocommit, timeout_s: int) -> None:
        self._autocommit = autocommit  # runs statements outside any data transaction
        self._timeout_s = timeout_s
        self.dims: dict[VectorLabel, int] = {}
        self._new: dict[VectorLabel, int] = {}

    def refresh(self) -> None:
        labels = {name: label for label, name in cypher.VECTOR_INDEXES.items()}
        rows = self._autocommit([cypher.show_indexes()])[0]
        self.dims = {
            labels[r["name"]]: int(r["options"]["indexConfig"]["vector.dimensions"])
            for r in rows
            if r["name"] in labels
        }

    def note(self, label: VectorLabel, vectors: Sequence[list[float] | None]) -> None:
        """Called by a write, inside its transaction, before it stores `vectors`."""
        dims = {len(v) for v in vectors if v is not None}
        known = self.dims.get(label) or self._new.get(label)
        if known is not None:
            dims.add(known)
        if len(dims) > 1:
            raise UsageError(
                f"{label.lower()} embeddings of {sorted(dims)} dimensions: a Neo4j store "
                "keeps one dimension per kind in its vector index"
                + (f" (this store: {known})" if known else ""),
                fix="embed everything with one model, or copy the store into a new one "
                "and re-embed it there",
            )
        if dims and known is None:
            self._new[label] = cypher.validate_dimensions(dims.pop())

    def discard_new(self) -> None:
        """The write rolled back."""
        self._new = {}

    def create_new(self) -> None:
        """The write committed: index what it embedded first, and wait until it is online."""
        new, self._new = self._new, {}
        todo = {label: dims for label, dims in new.items() if label not in self.dims}
        if not todo:
            return
        names = [cypher.VECTOR_INDEXES[label] for label in todo]
        self._autocommit(
            [
                *(cypher.vector_index(label, dims) for label, dims in todo.items()),
                *(cypher.await_index(name, self._timeout_s) for name in names),
            ]
        )
        self.refresh()

    def searchable(self, label: VectorLabel, vector: Sequence[float]) -> bool:
        """Whether to query the index: not when nothing of the kind was ever embedded."""
        if label not in self.dims:
            self.refresh()  # another process may have indexed it since
        dim = self.dims.get(label)
        if dim is not None and len(vector) != dim:
            raise dimension_mismatch(len(vector), [dim])
        return dim is not None
