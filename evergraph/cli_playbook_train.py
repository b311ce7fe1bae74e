"""The playbook learning commands: `playbook train` and `playbook eval`.

Declarations only (arguments, options, help); the work is in `cli_playbook_train_ops`,
imported when a command runs so that `evergraph --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evergraph.agents.ace_types import AceSettings
from evergraph.config import Settings
from evergraph.evals.ace_tasks import TaskKind

DEFAULTS = AceSettings()
TASK_HELP = "How answers are scored (default: detected from the file)."
LIMIT_HELP = "Only the first N items of each file."
OUT_HELP = "Write <stem>.predictions.jsonl and <stem>.scores.json to this folder."
BUDGET_HELP = "Playbook tokens in the generator's prompt."


class Mode(StrEnum):
    offline = "offline"
    online = "online"


def register_playbook_train_commands(
    playbook_app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> None:
    """Add `train` and `eval` to the `evergraph playbook` group."""

    @playbook_app.command()
    def train(
        ctx: typer.Context,
        file: Annotated[
            Path,
            typer.Argument(
                help='Tasks, JSONL: {"context", "target"} (ACE) or {"question", "answer"}.',
                show_default=False,
            ),
        ],
        name: Annotated[str, typer.Option(help="The playbook (created when new).")],
        mode: Annotated[
            Mode, typer.Option(help="offline: epochs, best by --val; online: one pass.")
        ] = Mode.offline,
        val: Annotated[
            Path | None, typer.Option(help="Validation tasks (offline): keeps the best epoch.")
        ] = None,
        epochs: Annotated[int, typer.Option(min=1, help="Passes over FILE (offline).")] = 1,
        task: Annotated[TaskKind | None, typer.Option(help=TASK_HELP)] = None,
        ground_truth: Annotated[
            bool,
            typer.Option(
                help="Show the reflector the gold answer; --no-ground-truth learns from the "
                "answers' own reasoning (ACE without labels)."
            ),
        ] = True,
        limit: Annotated[int | None, typer.Option(min=1, help=LIMIT_HELP)] = None,
        budget: Annotated[int, typer.Option(min=0, help=BUDGET_HELP)] = DEFAULTS.budget,
        reflect_rounds: Annotated[
            int, typer.Option(min=1, help="Reflection rounds (the first plus refinements).")
        ] = DEFAULTS.reflect_rounds,
        out_dir: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
    ) -> None:
        """Grow a playbook from tasks: answer, reflect, curate small delta ops, refine.

        Every update is saved as soon as it is made (one transaction, with its history), so
        Ctrl-C loses nothing: run the command again to go on. Offline mode scores the playbook
        on --val after each epoch and keeps the best one (a revert in the history).
        The LLM comes from the settings (EVERGRAPH_LLM__BASE_URL, __MODEL, ...).

        Examples:

          evergraph playbook train train.jsonl --name fin --val val.jsonl --epochs 2 --limit 50

          evergraph playbook train tasks.jsonl --name bot --mode online --no-ground-truth
        """
        from evergraph.cli_playbook_train_ops import run_train

        ace = DEFAULTS.model_copy(update={"budget": budget, "reflect_rounds": reflect_rounds})
        run_train(
            settings(ctx),
            file,
            name=name,
            offline=mode is Mode.offline,
            val=val,
            epochs=epochs,
            kind=task,
            ground_truth=ground_truth,
            limit=limit,
            ace=ace,
            out_dir=out_dir,
            out=out,
        )

    @playbook_app.command("eval")
    def evaluate(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="Tasks, JSONL (as for train).")],
        name: Annotated[str, typer.Option(help="The playbook to answer with (never changed).")],
        no_playbook: Annotated[
            bool, typer.Option("--no-playbook", help="Answer with an empty playbook: the baseline.")
        ] = False,
        task: Annotated[TaskKind | None, typer.Option(help=TASK_HELP)] = None,
        limit: Annotated[int | None, typer.Option(min=1, help=LIMIT_HELP)] = None,
        budget: Annotated[int, typer.Option(min=0, help=BUDGET_HELP)] = DEFAULTS.budget,
        out_dir: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
    ) -> None:
        """Score a playbook on tasks without changing it: accuracy, tokens and time per task.

        Examples:

          evergraph playbook eval val.jsonl --name fin --limit 50

          evergraph playbook eval val.jsonl --name fin --no-playbook
        """
        from evergraph.cli_playbook_train_ops import run_eval

        run_eval(
            settings(ctx),
            file,
            name=name,
            empty=no_playbook,
            kind=task,
            limit=limit,
            ace=DEFAULTS.model_copy(update={"budget": budget}),
            out_dir=out_dir,
            out=out,
        )
