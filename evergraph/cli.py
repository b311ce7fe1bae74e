"""`evergraph` command line. Every user mistake ends in one clear message, never a traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table

from evergraph.config import Settings, load_settings
from evergraph.errors import EvergraphError, UsageError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"

app = typer.Typer(
    help=(
        "Evergraph: memory for LLM agents: playbooks, a temporal knowledge graph, "
        "multi-hop evidence search.\n\n"
        "Settings come from EVERGRAPH_* variables (nested with __, e.g. "
        "EVERGRAPH_LLM__MODEL) and ./evergraph.toml. Start with `evergraph doctor`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app = typer.Typer(help="Serve a small local model (llama.cpp or vLLM on CPU) on 127.0.0.1.")
app.add_typer(model_app, name="model")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = load_settings(ctx.obj)
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A TOML settings file (default: ./evergraph.toml)."),
    ] = None,
) -> None:
    ctx.obj = config


@app.command()
def doctor(
    ctx: typer.Context,
    skip_llm: Annotated[bool, typer.Option(help="Do not contact the LLM endpoint.")] = False,
) -> None:
    """Check the store, the embedder and the LLM endpoint, and say what to fix."""
    from evergraph.doctor import run_checks

    settings = _settings(ctx)
    checks = run_checks(settings, llm=not skip_llm)
    for c in checks:
        mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
        out.print(f"{mark} {c.name:9} {c.detail}")
        if c.fix:
            out.print(f"     {'':9} [yellow]fix:[/] {c.fix}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def stats(ctx: typer.Context) -> None:
    """Counts of what the store holds."""
    from evergraph.runtime import build_store

    store = build_store(_settings(ctx))
    try:
        s = store.stats()
    finally:
        store.close()
    table = Table(title=store.location, show_header=False)
    for k, v in s.model_dump().items():
        table.add_row(k, str(v))
    out.print(table)


@app.command()
def config(ctx: typer.Context) -> None:
    """Print the settings in effect (secrets masked)."""
    out.print_json(_settings(ctx).model_dump_json())


@app.command()
def smoke(
    ctx: typer.Context,
    docs: Annotated[
        list[Path] | None, typer.Argument(help="Documents (.md/.txt) or folders.")
    ] = None,
    question: Annotated[
        str, typer.Option("--question", "-q", help="What to ask about the documents.")
    ] = "Which module does Evergraph use to rank passages?",
    n: Annotated[int, typer.Option(min=1, max=16, help="Samples in one request.")] = 3,
) -> None:
    """End-to-end check: store + embed documents, retrieve, ask the model one question."""
    from evergraph.runtime import build_embedder, build_llm, build_store
    from evergraph.smoke import run_smoke

    settings = _settings(ctx)
    store = build_store(settings)
    llm = build_llm(settings)

    async def go() -> None:
        try:
            with out.status("loading the embedder"):
                embedder = build_embedder(settings)
            with out.status(f"asking {settings.llm.model} at {settings.llm.base_url}"):
                result = await run_smoke(store, embedder, llm, docs or [EXAMPLES], question, n)
        finally:
            await llm.aclose()
            store.close()
        out.print(f"stored {result.sources} documents as {result.chunks} embedded chunks")
        out.print("[bold]context[/]: " + " | ".join(t[:80] for t in result.context))
        for i, a in enumerate(result.answers, 1):
            out.print(f"[bold]answer {i}[/]: {a.answer}  [dim](quote: {a.quote[:100]})[/]")
        u = result.usage
        out.print(
            f"{len(result.answers)}/{n} valid samples, {result.dropped} dropped; "
            f"{u.requests} request(s), {u.prompt_tokens} prompt + {u.completion_tokens} "
            f"completion tokens, {u.cached_requests} from cache"
        )
        if not result.answers:
            raise typer.Exit(1)

    asyncio.run(go())


def main() -> None:
    """Entry point: map errors to messages and exit codes (2 usage, 1 runtime, 130 Ctrl-C)."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, click.Abort):
        err.print("[yellow]interrupted[/]: everything already committed is kept.")
        sys.exit(130)
    except EvergraphError as e:
        err.print(f"[red]error[/]: {e.message}", highlight=False)
        if e.fix:
            err.print(f"[yellow]fix[/]: {e.fix}", highlight=False)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    sys.exit(rv if isinstance(rv, int) else 0)
