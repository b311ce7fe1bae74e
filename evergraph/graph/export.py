"""Exporting the graph as of a time: GraphML (Gephi, yEd, networkx), JSON (networkx
node-link) or CSV (entities.csv and facts.csv, with evidence counts).

CSV is written as the store is scanned (constant memory beyond an id -> name map and the
evidence counts); GraphML and JSON are written from the networkx view (`views.to_networkx`),
which holds the graph in memory. Literal-valued facts are kept: as literal nodes in GraphML and
JSON, as a value column in facts.csv. Times are ISO 8601; GraphML has no null, so a missing
value is left out of the element.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from evergraph.errors import UsageError
from evergraph.graph.models import Evidence
from evergraph.graph.store.base import GraphStore
from evergraph.graph.views import entities_known, facts_holding, records, to_networkx

Format = Literal["graphml", "json", "csv"]
FORMATS: tuple[Format, ...] = ("graphml", "json", "csv")
ENTITY_COLUMNS = ("id", "name", "type", "aliases", "mentions", "first_seen", "last_seen", "summary")
FACT_COLUMNS = (
    "id",
    "subject_id",
    "subject",
    "predicate",
    "object_id",
    "object",
    "object_value",
    "confidence",
    "support",
    "evidence",
    "valid_from",
    "valid_to",
    "recorded_at",
    "retired_at",
    "status",
    "reason",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _storable(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy with ISO times and without None values (neither GraphML nor JSON has datetimes)."""
    out = nx.MultiDiGraph(**{k: _plain(v) for k, v in g.graph.items() if v is not None})
    for n, attrs in g.nodes(data=True):
        out.add_node(n, **{k: _plain(v) for k, v in attrs.items() if v is not None})
    for u, v, key, attrs in g.edges(keys=True, data=True):
        out.add_edge(u, v, key=key, **{k: _plain(a) for k, a in attrs.items() if a is not None})
    return out


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_graphml(
    store: GraphStore,
    path: Path,
    *,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
) -> Path:
    g = to_networkx(store, as_of=as_of, recorded_at=recorded_at, literals=True)
    nx.write_graphml(_storable(g), _file(path))
    return path


def write_json(
    store: GraphStore,
    path: Path,
    *,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
) -> Path:
    """networkx node-link JSON: read back with `nx.node_link_graph(data, edges="edges")`."""
    g = to_networkx(store, as_of=as_of, recorded_at=recorded_at, literals=True)
    data = nx.node_link_data(_storable(g), edges="edges")
    with _file(path).open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    return path


def write_csv(
    store: GraphStore,
    folder: Path,
    *,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    entities_path, facts_path = folder / "entities.csv", folder / "facts.csv"
    with entities_path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(ENTITY_COLUMNS)
        for e in entities_known(store, as_of=as_of):
            names[e.id] = e.name
            out.writerow(
                [
                    e.id,
                    e.name,
                    e.type,
                    "; ".join(e.aliases),
                    e.mentions,
                    _plain(e.first_seen),
                    _plain(e.last_seen),
                    e.summary,
                ]
            )
    counts = Counter(e.fact_id for e in records(store, Evidence))
    with facts_path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(FACT_COLUMNS)
        for x in facts_holding(store, as_of=as_of, recorded_at=recorded_at):
            out.writerow(
                [
                    x.id,
                    x.subject_id,
                    names.get(x.subject_id, ""),
                    x.predicate,
                    x.object_id,
                    names.get(x.object_id, "") if x.object_id else "",
                    x.object_value,
                    x.confidence,
                    x.support,
                    counts[x.id],
                    _plain(x.valid_from),
                    _plain(x.valid_to),
                    _plain(x.recorded_at),
                    _plain(x.retired_at),
                    x.status.value,
                    x.retire_reason,
                ]
            )
    return [entities_path, facts_path]


def export_graph(
    store: GraphStore,
    format: str,
    path: Path,
    *,
    as_of: datetime | None = None,
    recorded_at: datetime | None = None,
) -> list[Path]:
    """Write the graph in `format` to `path` (a file; for csv, a folder); the files written."""
    if format == "graphml":
        return [write_graphml(store, path, as_of=as_of, recorded_at=recorded_at)]
    if format == "json":
        return [write_json(store, path, as_of=as_of, recorded_at=recorded_at)]
    if format == "csv":
        return write_csv(store, path, as_of=as_of, recorded_at=recorded_at)
    raise UsageError(f"no export format {format!r}", fix=f"use one of: {', '.join(FORMATS)}")
