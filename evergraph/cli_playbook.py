"""The `evergraph playbook` group: list, show, history, diff, revert, export, import.

Declarations only (arguments, options, help); the work is in `cli_playbook_ops`, imported when
a command runs. `register_playbook_commands` returns the group so that other modules can add
their own commands to it (training and evaluation do).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from evergraph.config import Settings

NAME_HELP = "The playbook's name (`evergraph playbook list` shows them)."
Name = Annotated[str, typer.Argument(help=NAME_HELP, show_default=False)]

GROUP_HELP = (
    "ACE playbooks: what agents learned, as bullets changed only by recorded deltas.\n\n"
    "Every change (ADD, UPDATE, TAG, MERGE, REMOVE) is an entry in the playbook's history: "
    "read it, diff any two versions, revert to one (the revert is recorded too), and move "
    "playbooks between stores as JSON files."
    + """

Examples:

  evergraph playbook list

  evergraph playbook show finance --budget 800 --task "What is the CAGR from 2019 to 2023?"

  evergraph playbook history finance --since 40

  evergraph playbook diff finance --from 10 --to 25

  evergraph playbook revert finance --to 25

  evergraph playbook export finance --out finance.json

  evergraph playbook import finance.json --name finance-copy
"""
)


def register_playbook_commands(
    app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> typer.Typer:
    """Add the `playbook` group to the `evergraph` app; returns the group."""
    playbook_app = typer.Typer(help=GROUP_HELP, no_args_is_help=True)
    app.add_typer(playbook_app, name="playbook")

    @playbook_app.command("list")
    def list_(ctx: typer.Context) -> None:
        """The playbooks in the store, with their version, size and sections.

        Example:

          evergraph playbook list
        """
        from evergraph.cli_playbook_ops import list_playbooks, opened

        with opened(settings(ctx)) as store:
            list_playbooks(store, out)

    @playbook_app.command()
    def show(
        ctx: typer.Context,
        name: Name,
        budget: Annotated[
            int | None,
            typer.Option(
                min=0,
                help="At most this many tokens (about 4 characters each); without it, the whole "
                "playbook.",
            ),
        ] = None,
        task: Annotated[
            str | None,
            typer.Option(
                help="Rank bullets by similarity to this task (x their usefulness) when they "
                "exceed the budget, as an agent's prompt would get them; loads the embedder.",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the rendering and the bullets as JSON.")
        ] = False,
    ) -> None:
        """The playbook as a prompt gets it, and each rendered bullet's counters and ids.

        Examples:

          evergraph playbook show finance

          evergraph playbook show finance --budget 500 --task "Tag the XBRL entity"

          evergraph playbook show finance --json
        """
        from evergraph.cli_playbook_ops import opened, print_show, rendered, show_json

        config = settings(ctx)
        with opened(config) as store:
            pb, view = rendered(config, store, name, budget=budget, task=task)
        if as_json:
            typer.echo(show_json(pb, view))
        else:
            print_show(pb, view, out)

    @playbook_app.command()
    def history(
        ctx: typer.Context,
        name: Name,
        since: Annotated[int, typer.Option(min=0, help="Only entries after this version.")] = 0,
        limit: Annotated[
            int | None, typer.Option(min=0, help="Only the most recent N entries.")
        ] = None,
    ) -> None:
        """The playbook's history, one entry per change, oldest first.

        Each entry's seq is the version it made; the table gives its time, the operation,
        who proposed it (curator, refine, revert, import) and why.

        Examples:

          evergraph playbook history finance

          evergraph playbook history finance --since 40 --limit 10
        """
        from evergraph.cli_playbook_ops import opened, print_history

        with opened(settings(ctx)) as store:
            print_history(store, name, since=since, limit=limit, out=out)

    @playbook_app.command()
    def diff(
        ctx: typer.Context,
        name: Name,
        start: Annotated[int, typer.Option("--from", min=0, help="The older version (0: empty).")],
        end: Annotated[
            int | None,
            typer.Option("--to", min=0, help="The newer version (default: the current one)."),
        ] = None,
    ) -> None:
        """Bullets added, removed and changed between two versions, rebuilt from the history.

        Examples:

          evergraph playbook diff finance --from 0

          evergraph playbook diff finance --from 10 --to 25
        """
        from evergraph.cli_playbook_ops import opened, print_diff, versions_diff

        with opened(settings(ctx)) as store:
            change = versions_diff(store, name, start=start, end=end)
        title = f"{name}: version {start} -> {'now' if end is None else end}"
        print_diff(change, title, out)

    @playbook_app.command()
    def revert(
        ctx: typer.Context,
        name: Name,
        to: Annotated[int, typer.Option("--to", min=0, help="The version to go back to.")],
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
        ] = False,
    ) -> None:
        """Make the bullets what they were at a version; recorded, never erased.

        Each undone change is appended to the history (origin "revert"), so a revert can
        itself be reverted. Shows the difference and asks before saving.

        Examples:

          evergraph playbook revert finance --to 25

          evergraph playbook revert finance --to 0 --yes
        """
        from evergraph.cli_playbook_ops import opened, plan_revert, print_diff
        from evergraph.playbooks.history import diff as bullets_diff

        with opened(settings(ctx)) as store:
            current, revision = plan_revert(store, name, to)
            if not revision.entries:
                out.print(escape(f"{name} is already as it was at version {to}: nothing to do"))
                return
            change = bullets_diff(current, revision.playbook)
            print_diff(change, f"{name}: now -> as at version {to}", out)
            if not yes and not typer.confirm(f"append {len(revision.entries)} undo entries?"):
                out.print("nothing changed")
                raise typer.Exit(1)
            # a conflict if another writer saved the playbook since it was read
            store.save_playbook(revision, expected_version=current.version)
        out.print(
            f"reverted {escape(name)} to version {to}: {len(revision.entries)} entries appended, "
            f"now at version {revision.playbook.version}"
        )

    @playbook_app.command()
    def export(
        ctx: typer.Context,
        name: Name,
        out_path: Annotated[
            Path | None,
            typer.Option("--out", dir_okay=False, help="The JSON file (default: print it)."),
        ] = None,
    ) -> None:
        """The playbook and its whole history as one JSON file, for `import` into any store.

        Format "evergraph-playbook", format_version 1 (the pydantic model
        evergraph.playbooks.transfer.PlaybookExport): the bullets with counters, times and
        cached embeddings, and every history entry.

        Examples:

          evergraph playbook export finance --out finance.json

          evergraph playbook export finance > finance.json
        """
        from evergraph.cli_playbook_ops import export_json, opened

        with opened(settings(ctx)) as store:
            text = export_json(store, name)
        if out_path is None:
            typer.echo(text)
        else:
            out_path.write_text(text + "\n", encoding="utf-8")
            out.print(escape(f"wrote {out_path}"))

    @playbook_app.command("import")
    def import_(
        ctx: typer.Context,
        file: Annotated[
            Path,
            typer.Argument(
                exists=True, dir_okay=False, help="A file `export` wrote.", show_default=False
            ),
        ],
        name: Annotated[
            str | None, typer.Option("--name", help="Store it under this name instead.")
        ] = None,
        replace: Annotated[
            bool,
            typer.Option(
                "--replace",
                help="Replace a playbook of that name. Its history is kept: the file's entries "
                "are appended when they continue it, else the replacement is recorded as "
                "entries (undo it with `revert`).",
            ),
        ] = False,
    ) -> None:
        """Store a playbook from an export file, its history included.

        The file is checked first: its format and version, and that its history leads to its
        bullets. An existing playbook of the same name is left alone unless --replace.

        Examples:

          evergraph playbook import finance.json

          evergraph playbook import finance.json --name finance-v2

          evergraph playbook import finance.json --replace
        """
        from evergraph.cli_playbook_ops import import_file, opened

        with opened(settings(ctx)) as store:
            import_file(store, file, name=name, replace=replace, out=out)

    return playbook_app
