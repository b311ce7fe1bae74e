"""Namespaces: one store file each, so that no query or write can reach another's data.

A namespace is an application, a user or an agent. Its name is checked against a strict
pattern before it ever touches the file system (no dots, no slashes: no path traversal), and
its store lives at HOME/namespaces/NAME.db.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.memory import PlaybookMemory
from evergraph.retrieval.hybrid import HybridRetriever

NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME = re.compile(NAMESPACE_PATTERN)
NAMESPACE_RULE = "1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"


def check_namespace(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name[:80]!r} is not a valid namespace", fix=f"use {NAMESPACE_RULE}")
    return name


@dataclass
class Tenant:
    """One namespace's store, and its search index state."""

    name: str
    store: GraphStore
    checkpoints: Path  # the ingestion checkpointer's file
    _retriever: HybridRetriever | None = field(default=None, repr=False)
    playbooks: dict[str, PlaybookMemory] = field(default_factory=dict, repr=False)

    def retriever(self, embedder: Embedder) -> HybridRetriever:
        """Kept between searches (its title index is read once); new documents drop it."""
        if self._retriever is None:
            self._retriever = HybridRetriever(self.store, embedder)
        return self._retriever

    def changed(self) -> None:
        self._retriever = None


class Tenants:
    """Opens each namespace's store on first use and keeps it open until `close`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[str, Tenant] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Tenant:
        check_namespace(name)
        with self._lock:
            tenant = self._open.get(name)
            if tenant is None:
                path = self.root / f"{name}.db"
                if path.resolve().parent != self.root.resolve():  # belt and braces
                    raise UsageError(f"{name!r} is not a valid namespace", fix=NAMESPACE_RULE)
                tenant = Tenant(name, SQLiteGraphStore(path), self.root / f"{name}.checkpoints.db")
                self._open[name] = tenant
            return tenant

    def close(self) -> None:
        with self._lock:
            for tenant in self._open.values():
                tenant.store.close()
            self._open.clear()
