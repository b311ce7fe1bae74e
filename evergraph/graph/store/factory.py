"""Open a graph store from the one-line location users put in EVERGRAPH_STORE."""

from __future__ import annotations

import re

from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.sqlite import SQLiteGraphStore

_NEO4J_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_ACCEPTED = "a file path (~/.evergraph/evergraph.db), sqlite:PATH or sqlite:///ABSOLUTE/PATH"


def _sqlite_path(rest: str, location: str) -> str:
    """The part after `sqlite:`. As in file URLs, `sqlite:///x` is the absolute path /x."""
    if not rest.startswith("//"):
        return rest
    authority, slash, path = rest[2:].partition("/")
    if authority or not slash:
        raise UsageError(
            f"{location!r} names a host; the SQLite store is a local file",
            fix=f"write {_ACCEPTED}",
        )
    return "/" + path


def open_store(location: str) -> GraphStore:
    """A store for `location`: a plain path or sqlite: URL opens the embedded SQLite store."""
    text = location.strip()
    if text.lower().startswith("sqlite:"):
        path = _sqlite_path(text[len("sqlite:") :], location)
    elif match := _URL.match(text):
        scheme = match.group(1).lower()
        if scheme in _NEO4J_SCHEMES:
            raise UsageError(
                f"the Neo4j store backend ({scheme}://) is not built yet",
                fix=f"use the embedded store for now: {_ACCEPTED}; "
                "Neo4j will come with the evergraph[neo4j] extra",
            )
        raise UsageError(f"unknown store location {location!r}", fix=f"write {_ACCEPTED}")
    else:
        path = text
    if not path:
        raise UsageError(f"empty store location {location!r}", fix=f"write {_ACCEPTED}")
    return SQLiteGraphStore(path)
