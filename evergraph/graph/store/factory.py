"""Open a graph store from the one-line location users put in EVERGRAPH_STORE."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from evergraph.config import Neo4jSettings
from evergraph.errors import UsageError
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.sqlite import SQLiteGraphStore

_NEO4J_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_ACCEPTED = (
    "a file path (~/.evergraph/evergraph.db), sqlite:PATH or sqlite:///ABSOLUTE/PATH, "
    "or a Neo4j server: neo4j://[USER:PASSWORD@]HOST:7687[/DATABASE]"
)


@dataclass(frozen=True)
class Neo4jTarget:
    uri: str  # scheme, host and port (and routing query): no credentials, no database
    user: str
    password: str = field(repr=False)
    database: str | None


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


def neo4j_target(location: str, settings: Neo4jSettings) -> Neo4jTarget:
    """Where and as whom to connect. Credentials in the URL (percent-encoded) win over
    EVERGRAPH_NEO4J__USER / __PASSWORD; a path names the database (default: the server's)."""
    parts = urlsplit(location.strip())
    public = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # for messages
    fix = "write neo4j://[USER:PASSWORD@]HOST:7687[/DATABASE]"
    try:
        port = parts.port or 7687
    except ValueError:
        raise UsageError(f"{public!r} has an invalid port", fix=fix) from None
    if not parts.hostname:
        raise UsageError(f"{public!r} names no host", fix=fix)
    database = unquote(parts.path.strip("/")) or None
    if database is not None and "/" in database:
        raise UsageError(f"{public!r}: a database name cannot contain '/'", fix=fix)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    query = f"?{parts.query}" if parts.query else ""
    return Neo4jTarget(
        uri=f"{parts.scheme.lower()}://{host}:{port}{query}",
        user=unquote(parts.username) if parts.username else settings.user,
        password=(
            unquote(parts.password)
            if parts.password is not None
            else settings.password.get_secret_value()
        ),
        database=database,
    )


def _open_neo4j(target: Neo4jTarget) -> GraphStore:
    try:
        from evergraph.graph.store.neo4j import Neo4jGraphStore  # the driver is an extra
    except ImportError as e:
        if (e.name or "").partition(".")[0] != "neo4j":
            raise
        raise UsageError(
            "the Neo4j store needs the neo4j driver, which is not installed",
            fix="pip install 'evergraph[neo4j]'",
        ) from e
    return Neo4jGraphStore(target.uri, target.user, target.password, target.database)


def open_store(
    location: str, *, neo4j: Neo4jSettings | None = None, create: bool = True
) -> GraphStore:
    """A store for `location`: a plain path or sqlite: URL opens the embedded SQLite store,
    a neo4j:// or bolt:// URL (also +s, +ssc) a Neo4j server, with credentials from the URL
    or else from `neo4j` (EVERGRAPH_NEO4J__*). Without `create`, a missing SQLite file is a
    usage error: a store to read from that does not exist is a typo, not an empty store."""
    text = location.strip()
    if text.lower().startswith("sqlite:"):
        path = _sqlite_path(text[len("sqlite:") :], location)
    elif match := _URL.match(text):
        if match.group(1).lower() in _NEO4J_SCHEMES:
            return _open_neo4j(neo4j_target(text, neo4j or Neo4jSettings()))
        raise UsageError(f"unknown store location {location!r}", fix=f"write {_ACCEPTED}")
    else:
        path = text
    if not path:
        raise UsageError(f"empty store location {location!r}", fix=f"write {_ACCEPTED}")
    if not create and not Path(path).expanduser().exists():
        raise UsageError(f"there is no store at {path}", fix="name an existing store file")
    return SQLiteGraphStore(path)
