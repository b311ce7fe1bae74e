"""The store contract every graph backend implements (embedded SQLite, Neo4j).

Kept small on purpose: backends store and read records; integration rules (reinforcement,
conflicts) live in `graph/` and only call these methods. `tests/conformance/` holds the suite
every backend must pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from evergraph.graph.models import (
    Change,
    Chunk,
    Entity,
    Evidence,
    Fact,
    FactStatus,
    Source,
    StoreStats,
)
from evergraph.playbooks.history import HistoryEntry, Revision
from evergraph.playbooks.models import Playbook

# The record kinds a store holds, as `scan` takes them.
Record = TypeVar("Record", Source, Chunk, Entity, Fact, Evidence)


@runtime_checkable
class GraphStore(Protocol):
    location: str

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all of them commit together or none does. Nesting joins the outer one.

        Outside a transaction every write method commits on its own.
        """
        ...

    # -- writes (upserts replace the whole record with the same id) --------------------
    def upsert_sources(self, sources: Sequence[Source]) -> None: ...
    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None: ...
    def upsert_entities(self, entities: Sequence[Entity]) -> None: ...
    def upsert_facts(self, facts: Sequence[Fact]) -> None: ...
    def add_evidence(self, evidence: Sequence[Evidence]) -> None: ...

    def retire_fact(
        self,
        fact_id: str,
        *,
        at: datetime,
        reason: str,
        status: FactStatus = FactStatus.SUPERSEDED,
        valid_to: datetime | None = None,
    ) -> None:
        """Retire, never delete: sets retired_at, status, reason (and valid_to if given)."""
        ...

    def remove_evidence(self, evidence: Sequence[Evidence]) -> int:
        """Remove evidence records, matched as `add_evidence` matches them (fact, source,
        chunk, quote, model); the facts stay as they are. Returns how many were removed."""
        ...

    def delete_source(self, source_id: str) -> int:
        """Forget a source: its chunks and evidence go, and so do facts left without evidence.

        Returns the number of facts deleted. This is the only way facts are deleted.
        """
        ...

    # -- reads ---------------------------------------------------------------------------
    def get_source(self, source_id: str) -> Source | None: ...
    def get_entity(self, entity_id: str) -> Entity | None: ...
    def get_fact(self, fact_id: str) -> Fact | None: ...

    def get_entities(self, entity_ids: Sequence[str]) -> list[Entity]:
        """The entities that exist among `entity_ids`, in that order, each once."""
        ...

    def get_facts(self, fact_ids: Sequence[str]) -> list[Fact]:
        """The facts that exist among `fact_ids` (retired ones too), in that order, each once."""
        ...

    def find_sources(self, key: str) -> list[Source]:
        """Every stored version of the document with this key, oldest ingested first; an
        empty key finds nothing."""
        ...

    def chunks_of(self, source_ids: Sequence[str]) -> list[Chunk]:
        """The chunks of these sources, each source's in order, without embeddings (as search
        hits): a document that retrieval links to by its title, read by an index lookup."""
        ...

    def find_entities(self, name: str, *, type: str | None = None, limit: int = 10) -> list[Entity]:
        """Entities whose name or an alias equals `name`, ignoring case."""
        ...

    def facts_about(
        self,
        entity_id: str,
        *,
        predicate: str | None = None,
        as_of: datetime | None = None,
        recorded_at: datetime | None = None,
        history: bool = False,
    ) -> list[Fact]:
        """Facts with the entity as subject or object that hold per `Fact.holds`; with
        `history`, every such fact whatever its time and status (as_of and recorded_at must
        then be None)."""
        ...

    def facts_by_subject(self, pairs: Sequence[tuple[str, str]]) -> list[Fact]:
        """Every fact whatever its time and status whose (subject_id, predicate) is one of
        `pairs`: the records a constructor weighs a new claim against, in one read."""
        ...

    def evidence_for(self, fact_id: str) -> list[Evidence]: ...

    def evidence_from(self, source_id: str) -> list[Evidence]:
        """The evidence citing a source, in the order `evidence_for` uses."""
        ...

    def neighbourhood(
        self, entity_ids: Sequence[str], *, hops: int = 2, as_of: datetime | None = None
    ) -> list[Fact]:
        """Facts reachable within `hops` edges (either direction) of the given entities."""
        ...

    def search_chunks_text(self, query: str, *, k: int = 10) -> list[tuple[Chunk, float]]:
        """BM25 full-text search; higher score is better. Any user text is a valid query.
        Hits carry no embedding (None), nor do those of `search_chunks_vector`: no reader of a
        hit needs one, and decoding them cost a tenth of a hybrid query."""
        ...

    def search_chunks_vector(
        self, vector: Sequence[float], *, k: int = 10
    ) -> list[tuple[Chunk, float]]:
        """Cosine similarity over chunk embeddings; higher is better."""
        ...

    def search_entities_vector(
        self, vector: Sequence[float], *, k: int = 10, type: str | None = None
    ) -> list[tuple[Entity, float]]: ...

    def scan(
        self, kind: type[Record], *, after: str = "", limit: int = 1000
    ) -> tuple[list[Record], str]:
        """One page of all stored records of a kind (Source, Chunk, Entity, Fact, Evidence)
        in a stable order, for copying a store. Pass the returned cursor as `after` for the
        next page; an empty cursor means there are no more. Cursors are opaque: only the
        store that returned one understands it."""
        ...

    def changes(self, *, since: int = 0, limit: int = 1000) -> list[Change]:
        """The change log after sequence number `since`, oldest first."""
        ...

    def stats(self) -> StoreStats: ...

    # -- playbooks (ACE): current state plus an append-only history, per name ------------
    def get_playbook(self, name: str) -> Playbook | None:
        """The playbook with its bullets (embeddings included), None if there is none."""
        ...

    def save_playbook(self, revision: Revision, *, expected_version: int) -> None:
        """Write revision.playbook (bullets with their embeddings) and append revision.entries
        in ONE transaction. Optimistic concurrency: raise PlaybookConflictError when the stored
        version is not `expected_version` (0: the playbook must not exist yet, or still be at
        version 0). The entries' seq must continue the stored history up to the playbook's
        version."""
        ...

    def playbook_history(self, name: str, *, since: int = 0) -> list[HistoryEntry]:
        """The history entries with seq > since, oldest first."""
        ...

    def list_playbooks(self) -> list[str]:
        """The names of the stored playbooks, sorted."""
        ...
