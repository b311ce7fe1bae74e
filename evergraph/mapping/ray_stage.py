"""The extraction stage on Ray: a Ray Data map over batches of papers.

Each actor opens the LLM client once per batch (`LLMFactory`, pickled from the driver, so every
worker talks to the same endpoint) and extracts the batch's papers with at most
`MapOptions.concurrency` in flight, through the same `extract_or_fail` as the local executor.
Only extraction is distributed: the driver integrates the results in date order (`job`), one
writer per store, which is why a Ray run and a local run build the same graph.

`ray.init()` connects to the cluster named by RAY_ADDRESS (Ray reads it), or starts a local
one; a session the caller started already is reused.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt
import ray

from evergraph.agents.extract import ExtractOptions, Extractor
from evergraph.errors import UnreachableError
from evergraph.graph.candidates import DocumentExtraction
from evergraph.graph.chunking import chunk_source
from evergraph.graph.ingest import Document
from evergraph.graph.models import Source
from evergraph.graph.schema import GraphSchema
from evergraph.mapping.job import LLMFactory, extract_or_fail
from evergraph.mapping.options import MapOptions

Batch = dict[str, npt.NDArray[np.str_]]
Extracted = dict[str, tuple[DocumentExtraction, str | None]]
COLUMNS = ("source_id", "extraction", "error", "unreachable")  # of a batch out


class ExtractBatch:
    """The Ray Data actor: a batch of sources (JSON) in, their extractions (JSON) out."""

    def __init__(
        self,
        llm_factory: LLMFactory,
        schema: GraphSchema,
        options: ExtractOptions,
        map_options: MapOptions,
    ) -> None:
        self.llm_factory = llm_factory
        self.schema = schema
        self.options = options
        self.map_options = map_options

    def __call__(self, batch: Batch) -> Batch:
        try:
            done = asyncio.run(self._extract([str(s) for s in batch["source"]]))
        except UnreachableError as e:
            # Ray would hand the driver a UserCodeException without it: sent as a row instead
            unreachable = json.dumps({"message": e.message, "fix": e.fix})
            return {k: np.array([unreachable if k == "unreachable" else ""]) for k in COLUMNS}
        return {
            "source_id": np.array([e.source_id for e, _ in done]),
            "extraction": np.array([e.model_dump_json() for e, _ in done]),
            "error": np.array([error or "" for _, error in done]),
            "unreachable": np.array([""] * len(done)),
        }

    async def _extract(self, sources: list[str]) -> list[tuple[DocumentExtraction, str | None]]:
        slots = asyncio.Semaphore(self.map_options.concurrency)
        async with self.llm_factory() as llm:
            extractor = Extractor(llm, self.schema, self.options)

            async def one(raw: str) -> tuple[DocumentExtraction, str | None]:
                source = Source.model_validate_json(raw)
                extract = partial(extractor.document, source.id, chunk_source(source))
                async with slots:
                    return await extract_or_fail(extract, source.id, llm.model, self.map_options)

            return list(await asyncio.gather(*(one(s) for s in sources)))


def extract_on_ray(
    documents: Sequence[Document],
    llm_factory: LLMFactory,
    schema: GraphSchema,
    options: ExtractOptions,
    map_options: MapOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Extracted:
    """Every document's extraction (or failure), by source id, as the workers finish them."""
    if not documents:
        return {}
    if not ray.is_initialized():
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    items = [{"source": d.to_source().model_dump_json()} for d in documents]
    dataset = ray.data.from_items(items).map_batches(
        ExtractBatch,
        fn_constructor_args=(llm_factory, schema, options, map_options),
        batch_size=map_options.batch_size,
        batch_format="numpy",
        concurrency=map_options.workers,
    )
    done: Extracted = {}
    for row in dataset.iter_rows():
        if row["unreachable"]:  # the job stops, as on the local executor
            raise UnreachableError(**json.loads(str(row["unreachable"])))
        extraction = DocumentExtraction.model_validate_json(str(row["extraction"]))
        done[extraction.source_id] = (extraction, str(row["error"]) or None)
        if progress is not None:
            progress(len(done), len(documents))
    return done
