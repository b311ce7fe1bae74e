"""`evergraph serve`: the HTTP API and MCP server; `evergraph serve keys`: API keys.

Declarations only; the server is in `evergraph.server`, imported when a command runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from evergraph.config import Settings

if TYPE_CHECKING:
    from evergraph.server.keys import KeyRing


def register_serve_commands(
    app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> None:
    """Add `serve` (and `serve keys ...`) to the `evergraph` app."""
    serve_app = typer.Typer(
        help=(
            "Serve the HTTP API (OpenAPI at /openapi.json) and MCP (at /mcp, or --mcp-stdio). "
            "Each namespace is its own store, HOME/namespaces/NAMESPACE.db (not EVERGRAPH_STORE)."
            "\n\nExamples:\n\n  evergraph serve\n\n  evergraph serve --mcp-stdio"
        ),
        no_args_is_help=False,
    )
    keys_app = typer.Typer(help="API keys per namespace (stored hashed in HOME).")
    serve_app.add_typer(keys_app, name="keys")
    app.add_typer(serve_app, name="serve")

    @serve_app.callback(invoke_without_command=True)
    def serve(
        ctx: typer.Context,
        host: Annotated[
            str, typer.Option(help="Bind address; beyond loopback, API keys are required.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
        mcp_stdio: Annotated[
            bool, typer.Option("--mcp-stdio", help="Serve MCP on stdin/stdout instead of HTTP.")
        ] = False,
        max_body: Annotated[int, typer.Option(min=1024, help="Largest request body, in bytes.")] = 8
        * 1024
        * 1024,
        rate: Annotated[
            float, typer.Option(min=0.1, help="Requests a second per key (bursts of 2x).")
        ] = 20.0,
        grace: Annotated[
            float, typer.Option(min=0, help="Seconds a running ingestion job gets at shutdown.")
        ] = 30.0,
        require_keys: Annotated[
            bool, typer.Option(help="Require API keys on loopback too.")
        ] = False,
        schema: Annotated[
            Path | None, typer.Option(help="A graph schema (JSON) for extraction.")
        ] = None,
    ) -> None:
        """Serve until stopped (SIGTERM or Ctrl-C finish the requests in flight first)."""
        if ctx.invoked_subcommand is not None:
            return
        from evergraph.graph.schema import GraphSchema, load_schema
        from evergraph.server.run import build_services, serve_http, serve_stdio
        from evergraph.server.services import ServerOptions

        options = ServerOptions(
            host=host,
            port=port,
            max_body=max_body,
            rate=rate,
            burst=max(1, round(2 * rate)),
            grace_s=grace,
            require_keys=require_keys,
        )
        services = build_services(
            settings(ctx), options, load_schema(schema) if schema else GraphSchema()
        )
        if mcp_stdio:
            asyncio.run(serve_stdio(services))
        else:
            serve_http(services)

    def _ring(ctx: typer.Context) -> KeyRing:
        from evergraph.server.keys import KEY_FILE, KeyRing

        return KeyRing(settings(ctx).home / KEY_FILE)

    @keys_app.command("add")
    def keys_add(
        ctx: typer.Context,
        namespace: Annotated[str, typer.Argument(help="The namespace the key opens.")],
        label: Annotated[str, typer.Option(help="A note: who or what uses it.")] = "",
    ) -> None:
        """Make a key; it is shown once (only its hash is stored).

        Example:

          evergraph serve keys add myapp --label bot
        """
        ring = _ring(ctx)
        key, token = ring.add(namespace, label=label)
        out.print(f"key {key.id} for namespace {namespace!r}; send it as a bearer token:")
        print(token)  # plain stdout: easy to capture in a script

    @keys_app.command("list")
    def keys_list(
        ctx: typer.Context,
        namespace: Annotated[str | None, typer.Argument(help="Only this namespace's.")] = None,
    ) -> None:
        """The keys (ids, namespaces, labels; never the secrets).

        Example:

          evergraph serve keys list myapp
        """
        ring = _ring(ctx)
        table = Table()
        for column in ("id", "namespace", "label", "created", "revoked"):
            table.add_column(column)
        for k in ring.list(namespace):
            revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
            table.add_row(
                k.id, k.namespace, k.label, k.created_at.isoformat(timespec="seconds"), revoked
            )
        out.print(table)

    @keys_app.command("revoke")
    def keys_revoke(
        ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
    ) -> None:
        """Revoke a key (its ID from `serve keys list`); a running server notices at its next
        request.

        Example:

          evergraph serve keys revoke ID
        """
        ring = _ring(ctx)
        key = ring.revoke(key_id)
        out.print(f"revoked key {key.id} of namespace {key.namespace!r}")
