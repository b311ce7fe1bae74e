"""Shared by the mapping tests: a few dated papers and a deterministic scripted extractor."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from evergraph.agents.build import constructor
from evergraph.agents.extract import ExtractOptions
from evergraph.agents.extract_rules import ChunkOut
from evergraph.embed.testing import HashingEmbedder
from evergraph.graph.ingest import Document, read_documents
from evergraph.graph.schema import GraphSchema, load_schema
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM, Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.mapping.job import MapJob, MapSummary
from evergraph.mapping.options import MapOptions

VOCABULARY = {  # concept -> type
    "dark matter": "object",
    "galaxy clusters": "object",
    "weak lensing": "method",
    "N-body simulations": "method",
    "Hubble Space Telescope": "instrument",
    "exoplanets": "object",
}
PAPERS = [  # (id, date, concepts); input order is not date order
    ("p3", "2008-03-02", ["dark matter", "weak lensing", "Hubble Space Telescope"]),
    ("p1", "2007-01-15", ["dark matter", "N-body simulations"]),
    ("p2", "2007-06-10", ["galaxy clusters", "N-body simulations", "dark matter"]),
    ("p4", "2008-05-20", ["weak lensing", "galaxy clusters"]),
    ("p5", "2008-09-09", ["exoplanets"]),
    ("p6", "2008-11-30", ["weak lensing", "dark matter", "galaxy clusters"]),
]


def write_papers(path: Path) -> Path:
    rows = [
        {
            "id": key,
            "title": f"Paper {key}",
            "abstract": "We study " + ", ".join(concepts) + " in detail.",
            "published": date,
            "authors": ["A. Author"],
            "venue": "astro-ph",
        }
        for key, date, concepts in PAPERS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_schema(path: Path) -> Path:
    """The kg-for-science shape: concept types with descriptions."""
    types = {t: f"a {t}" for t in sorted(set(VOCABULARY.values()))}
    path.write_text(json.dumps(types), encoding="utf-8")
    return path


def answer(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
    """Every sample names the vocabulary's concepts found in the text, and one relation."""
    text = messages[-1]["content"]
    found = [c for c in VOCABULARY if c in text]
    relations = []
    if "weak lensing" in found and "dark matter" in found:
        relations.append(
            {
                "subject": "weak lensing",
                "predicate": "probes",
                "object": "dark matter",
                "quote": "We study",
            }
        )
    out = ChunkOut.model_validate(
        {
            "entities": [{"name": c, "type": VOCABULARY[c]} for c in found],
            "relations": relations,
        }
    )
    return [out.model_dump_json()] * n


def scripted() -> AbstractAsyncContextManager[LLM]:
    return nullcontext(ScriptedLLM([answer] * 1000))


def run_map(
    tmp_path: Path,
    out: Path,
    *,
    options: MapOptions | None = None,
    llm_factory: object = scripted,
) -> tuple[MapSummary, SQLiteGraphStore]:
    documents: list[Document] = list(read_documents([write_papers(tmp_path / "papers.jsonl")]))
    schema: GraphSchema = load_schema(write_schema(tmp_path / "schema.json"))
    store = SQLiteGraphStore(out / "graph.db")
    job = MapJob(
        store,
        llm_factory,  # type: ignore[arg-type]
        schema,
        ExtractOptions(samples=2),
        constructor(store, HashingEmbedder(), schema),
        out,
        options,
    )
    return asyncio.run(job.run(documents)), store


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
