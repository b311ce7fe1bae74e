"""The literature-mapping commands: `map` (papers to a dated concept graph) and `report`.

Declarations and the little glue they need; the work is in `evergraph.mapping`, imported when
a command runs so that `evergraph --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from evergraph.cli_graph import AS_OF_HELP
from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.mapping.options import Executor, MapOptions
from evergraph.mapping.periods import Freq

if TYPE_CHECKING:
    from evergraph.mapping.job import MapSummary

PAPERS_HELP = (
    "JSONL/CSV files of papers: id, title, abstract, date|published, authors, venue, optional "
    "citations (extra fields are kept as metadata)."
)


def register_map_commands(
    app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> None:
    """Add `map` and `report` to the `evergraph` app."""

    @app.command("map")
    def map_papers(
        ctx: typer.Context,
        papers: Annotated[list[Path], typer.Argument(help=PAPERS_HELP, show_default=False)],
        out_dir: Annotated[
            Path, typer.Option("--out", help="The map's folder: store, checkpoints, failures.")
        ],
        schema: Annotated[
            Path | None,
            typer.Option(
                help="Concept types as {type: description} (kg-for-science's kg4s_schema.json) "
                "or a full graph schema; without one any type goes."
            ),
        ] = None,
        executor: Annotated[
            Executor,
            typer.Option(help="local, or ray (Ray Data; RAY_ADDRESS names a cluster)."),
        ] = Executor.local,
        workers: Annotated[int, typer.Option(min=1, help="Ray actors (with --executor ray).")] = 2,
        concurrency: Annotated[
            int | None,
            typer.Option(
                min=1,
                help="Papers in flight to the model server, per worker "
                "(default: EVERGRAPH_LLM__MAX_CONCURRENCY).",
            ),
        ] = None,
        samples: Annotated[
            int | None,
            typer.Option(
                min=1, max=16, help="Samples per paper (default: EVERGRAPH_EXTRACT__SAMPLES)."
            ),
        ] = None,
        attempts: Annotated[
            int, typer.Option(min=1, max=10, help="Tries per paper before it is recorded failed.")
        ] = 3,
        limit: Annotated[
            int | None, typer.Option(min=1, help="Only the first N papers in date order.")
        ] = None,
    ) -> None:
        """Map a field: extract concepts from papers into a dated concept graph under --out.

        Concepts found in one paper are linked (co-occurrence, dated by the paper) and tied to
        the paper; extracted relations are kept. Interrupted? Run the same command again: it
        resumes. A paper that keeps failing is recorded in OUT/failures.jsonl and tried again
        by the next run. Then: `evergraph report OUT`.

        Example:

          evergraph map examples/astro/abstracts.jsonl --out astro-map --limit 12
        """
        s = settings(ctx).with_requests(concurrency)
        options = MapOptions(
            concurrency=s.llm.max_concurrency,
            attempts=attempts,
            executor=executor,
            workers=workers,
        )
        summary = run_map(s, papers, out_dir, schema, samples, limit, options, out)
        from evergraph.cli_graph_ops import print_summary
        from evergraph.mapping.job import FAILURES

        print_summary(summary.build, out)
        if summary.failed:
            out.print(
                f"[yellow]{len(summary.failed)} paper(s) failed[/] (see "
                f"{out_dir / FAILURES}); run the same command again to retry them"
            )

    @app.command()
    def report(
        map_dir: Annotated[Path, typer.Argument(help="A folder written by `evergraph map`.")],
        out_dir: Annotated[
            Path | None, typer.Option("--out", help="Where to write (default: DIR/report).")
        ] = None,
        as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
        since: Annotated[
            str | None,
            typer.Option(help="Periods start here: papers before it are left out of trends."),
        ] = None,
        period: Annotated[Freq, typer.Option(help="Period length for trends.")] = Freq.year,
        min_papers: Annotated[
            int, typer.Option(min=2, help="Test a concept's trend from this many papers.")
        ] = 5,
        png: Annotated[bool, typer.Option(help="Also write PNG charts (matplotlib).")] = True,
        title: Annotated[str, typer.Option(help="The report's title.")] = "Concept map",
    ) -> None:
        """Write the map's report: an interactive HTML page, CSV tables and PNG charts.

        Frequency per period, rising and fading concepts (a trend test, not just counts),
        communities per period and their splits and merges, bridges and hubs; all as of
        --as-of (default: everything).

        Example:

          evergraph report astro-map --period month --since 2007-01 --as-of 2008-12-31
        """
        from evergraph.cli_graph_ops import parse_when
        from evergraph.graph.store.sqlite import SQLiteGraphStore
        from evergraph.mapping.job import STORE
        from evergraph.mapping.report import ReportOptions, write_report

        path = map_dir / STORE
        if not path.is_file():
            raise UsageError(
                f"{map_dir} holds no map ({STORE} is missing)",
                fix="pass the --out folder of `evergraph map`",
            )
        options = ReportOptions(
            as_of=parse_when(as_of, "--as-of"),
            since=parse_when(since, "--since"),
            freq=period,
            min_papers=min_papers,
            png=png,
            title=title,
        )
        store = SQLiteGraphStore(path)
        try:
            with out.status("analysing"):
                written = write_report(store, out_dir or map_dir / "report", options)
        finally:
            store.close()
        out.print(f"wrote {written[0]} and {len(written) - 1} tables and charts beside it")


def run_map(
    settings: Settings,
    papers: list[Path],
    out_dir: Path,
    schema_path: Path | None,
    samples: int | None,
    limit: int | None,
    options: MapOptions,
    out: Console,
) -> MapSummary:
    """Read the papers and run the mapping job with progress bars (ETA included)."""
    import asyncio

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from evergraph.agents.build import Progress as Built
    from evergraph.agents.build import constructor
    from evergraph.cli_graph_ops import extract_options
    from evergraph.graph.ingest import read_documents
    from evergraph.graph.schema import GraphSchema, load_schema
    from evergraph.graph.store.sqlite import SQLiteGraphStore
    from evergraph.mapping.job import STORE, MapJob
    from evergraph.mapping.job import papers as in_order
    from evergraph.runtime import build_embedder, build_llm

    schema = load_schema(schema_path) if schema_path else GraphSchema()
    extract = extract_options(settings, samples)
    documents = in_order(list(read_documents(papers)))[:limit]
    if not documents:
        raise UsageError("no papers to map", fix="pass JSONL or CSV files with abstracts")
    out_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteGraphStore(out_dir / STORE)
    try:
        with out.status("loading the embedder"):
            embedder = build_embedder(settings)
        job = MapJob(
            store,
            lambda: build_llm(settings),
            schema,
            extract,
            constructor(store, embedder, schema),
            out_dir,
            options,
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=out,
        ) as bar:
            extracting = bar.add_task("extracting on ray", total=None, visible=False)
            mapping = bar.add_task("papers", total=len(documents))

            def extracted(done: int, total: int) -> None:
                bar.update(extracting, completed=done, total=total, visible=True)

            def built(p: Built) -> None:
                bar.update(mapping, completed=p.done)

            return asyncio.run(job.run(documents, progress=built, extracted=extracted))
    finally:
        store.close()
