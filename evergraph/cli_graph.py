"""The knowledge-graph commands: `ingest`, `facts`, `entity`, `export`.

Declarations only (arguments, options, help); the work is in `cli_graph_ops`, imported when a
command runs so that `evergraph --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evergraph.config import Settings

AS_OF_HELP = "World time: facts as they held then (2019, 2019-03, 2019-03-31, ISO date-time)."


class ExportFormat(StrEnum):
    graphml = "graphml"
    json = "json"
    csv = "csv"


def register_graph_commands(
    app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> None:
    """Add the graph commands to the `evergraph` app."""

    @app.command()
    def ingest(
        ctx: typer.Context,
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="Files or folders: .jsonl/.json/.csv/.tsv (fields such as id, title, "
                "text|abstract, date|published, url), .txt, .md.",
                show_default=False,
            ),
        ],
        schema: Annotated[
            Path | None,
            typer.Option(
                help="A JSON schema of entity types and relations with domain/range, e.g. "
                "examples/astro/schema.json; without one any type and predicate goes."
            ),
        ] = None,
        samples: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=16,
                help="Samples per chunk, drawn in one request; a fact's confidence is their "
                "agreement (default: EVERGRAPH_EXTRACT__SAMPLES, 5).",
            ),
        ] = None,
        limit: Annotated[
            int | None, typer.Option(min=1, help="Only the first N documents in date order.")
        ] = None,
    ) -> None:
        """Build the knowledge graph from documents: extract facts, integrate them by date.

        Each chunk costs one LLM request with n samples; a triple is kept when enough samples
        agree and its quote, subject and object are in the text. Documents are integrated in date
        order, one transaction each. Interrupted (Ctrl-C, a crash)? Run the same command again: it
        resumes, and documents already in the store are skipped, never duplicated.

        Examples:

          evergraph ingest examples/astro/abstracts.jsonl --schema examples/astro/schema.json

          evergraph ingest examples/astro/abstracts.jsonl --samples 3 --limit 12
        """
        from evergraph.cli_graph_ops import ingest as run_ingest
        from evergraph.cli_graph_ops import print_summary

        summary = run_ingest(
            settings(ctx), paths, schema_path=schema, samples=samples, limit=limit, out=out
        )
        print_summary(summary, out)

    @app.command()
    def facts(
        ctx: typer.Context,
        entity: Annotated[str, typer.Argument(help="An entity name or alias (any case).")],
        as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
        recorded_at: Annotated[
            str | None,
            typer.Option(
                "--recorded-at", help="System time: what the store believed then (same formats)."
            ),
        ] = None,
        predicate: Annotated[str | None, typer.Option(help="Only this predicate.")] = None,
    ) -> None:
        """The facts about an entity that hold now, or --as-of a date, or as --recorded-at.

        Example:

          evergraph facts "M31" --as-of 2008-06 --predicate part_of
        """
        from evergraph.cli_graph_ops import parse_when, show_facts
        from evergraph.runtime import build_store

        when = parse_when(as_of, "--as-of")
        recorded = parse_when(recorded_at, "--recorded-at")
        store = build_store(settings(ctx))
        try:
            show_facts(
                store, entity, as_of=when, recorded_at=recorded, predicate=predicate, out=out
            )
        finally:
            store.close()

    @app.command()
    def entity(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="An entity name or alias (any case).")],
    ) -> None:
        """Everything about an entity: aliases, merges, facts past and present, their evidence
        (quotes and sources), and its history from the change log.

        Example:

          evergraph entity "M31"
        """
        from evergraph.cli_graph_ops import show_entity
        from evergraph.runtime import build_store

        store = build_store(settings(ctx))
        try:
            show_entity(store, name, out=out)
        finally:
            store.close()

    @app.command()
    def entities(
        ctx: typer.Context,
        top: Annotated[int, typer.Option(min=1, help="How many entities to list.")] = 10,
        as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
        names: Annotated[
            bool, typer.Option("--names", help="Only the names, one a line (for scripts).")
        ] = False,
    ) -> None:
        """The most connected entities: facts per entity (in and out) and PageRank.

        Examples:

          evergraph entities --top 10 --as-of 2008

          evergraph entities --top 3 --names
        """
        from evergraph.cli_graph_ops import parse_when, show_top_entities
        from evergraph.runtime import build_store

        when = parse_when(as_of, "--as-of")
        store = build_store(settings(ctx))
        try:
            show_top_entities(store, top=top, as_of=when, names_only=names, out=out)
        finally:
            store.close()

    @app.command()
    def export(
        ctx: typer.Context,
        fmt: Annotated[
            ExportFormat,
            typer.Option("--format", help="graphml (Gephi, yEd, networkx), json, or csv."),
        ],
        out_path: Annotated[
            Path, typer.Option("--out", help="The file to write (csv: a folder of tables).")
        ],
        as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
    ) -> None:
        """Export the graph (entities, facts with confidence, time and evidence counts).

        Example:

          evergraph export --format graphml --out graph.graphml --as-of 2008
        """
        from evergraph.cli_graph_ops import parse_when
        from evergraph.graph.export import export_graph
        from evergraph.runtime import build_store

        when = parse_when(as_of, "--as-of")
        store = build_store(settings(ctx))
        try:
            written = export_graph(store, fmt.value, out_path, as_of=when)
        finally:
            store.close()
        out.print("wrote " + ", ".join(str(p) for p in written))
