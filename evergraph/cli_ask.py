"""The evidence-search commands: `ask` and `eval multihop`.

Declarations only (arguments, options, help); the work is in `cli_ask_ops`, imported when a
command runs so that `evergraph --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evergraph.agents.evidence_types import LoopSettings
from evergraph.config import Settings

DEFAULTS = LoopSettings()
ROUNDS_HELP = "Retrieve-read rounds before the loop refuses."
TOKENS_HELP = "Prompt + completion tokens the loop may spend on one question."


class EvalMode(StrEnum):
    bm25 = "bm25"
    dense = "dense"
    bm25_dense = "bm25+dense"
    hybrid = "hybrid"
    hybrid_graph = "hybrid+graph"


def register_ask_commands(
    app: typer.Typer, settings: Callable[[typer.Context], Settings], out: Console
) -> None:
    """Add `ask` and the `eval` group to the `evergraph` app."""

    @app.command()
    def ask(
        ctx: typer.Context,
        question: Annotated[str, typer.Argument(help="A question, in quotes.", show_default=False)],
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of",
                help="Evidence as of a date: documents published by then, facts that held then "
                "(2019, 2019-03, 2019-03-31, ISO date-time).",
            ),
        ] = None,
        max_rounds: Annotated[int, typer.Option(min=1, help=ROUNDS_HELP)] = DEFAULTS.max_rounds,
        max_tokens: Annotated[int, typer.Option(min=1, help=TOKENS_HELP)] = DEFAULTS.max_tokens,
        trace: Annotated[
            bool, typer.Option("--trace", help="Print every step: plan, searches, claims kept.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the typed result (answer or refusal) as JSON.")
        ] = False,
    ) -> None:
        """Answer a question from the store's documents, citing quotes, or refuse and say why.

        The question is split into hops (sub-questions). Each hop is searched
        (BM25, vectors and the graph, fused) and read by the model; a claim counts
        only when its quote is in the passage. It answers once every hop has
        evidence, and otherwise refuses, naming the hops that lack it.
        A refusal is a result: the exit code is 0.

        Examples:

          evergraph ask "Which university did the director of Inception attend?"

          evergraph ask --trace "Who founded the company that makes the Model S?"

          evergraph ask --json --as-of 2019-06 "Which telescope observed galaxy G1?"
        """
        from evergraph.cli_ask_ops import ask_question, print_result, result_json
        from evergraph.cli_graph_ops import parse_when

        when = parse_when(as_of, "--as-of")
        loop = LoopSettings(max_rounds=max_rounds, max_tokens=max_tokens)
        result, titles = ask_question(settings(ctx), question, loop=loop, as_of=when)
        if as_json:
            typer.echo(result_json(result))
        else:
            print_result(result, titles, out, trace=trace)

    eval_app = typer.Typer(help="Measure Evergraph on benchmark files.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("multihop")
    def multihop(
        ctx: typer.Context,
        file: Annotated[
            Path,
            typer.Argument(
                exists=True,
                dir_okay=False,
                help="A HotpotQA- or MuSiQue-format JSONL file.",
                show_default=False,
            ),
        ],
        contrast: Annotated[
            Path | None,
            typer.Option(
                exists=True,
                dir_okay=False,
                help="Unanswerable twins of FILE's items (derived_from, removed_supporting_idx), "
                "e.g. DERIVED_musique_unanswerable_100.jsonl; asked with --llm.",
            ),
        ] = None,
        limit: Annotated[
            int | None,
            typer.Option(min=1, help="Evaluate the first N items (the corpus is always all)."),
        ] = None,
        llm: Annotated[
            bool, typer.Option("--llm", help="Also run the EvidenceLoop end to end (slow).")
        ] = False,
        k: Annotated[
            list[int] | None, typer.Option(min=1, help="Recall@k cut-offs (repeat; default 2, 5).")
        ] = None,
        mode: Annotated[
            list[EvalMode] | None, typer.Option(help="Retrievers to measure (repeat; default all).")
        ] = None,
        max_rounds: Annotated[int, typer.Option(min=1, help=ROUNDS_HELP)] = DEFAULTS.max_rounds,
        max_tokens: Annotated[int, typer.Option(min=1, help=TOKENS_HELP)] = DEFAULTS.max_tokens,
        store_dir: Annotated[
            Path | None,
            typer.Option(help="Where the indexed corpora are kept (default: HOME/eval)."),
        ] = None,
        out_dir: Annotated[
            Path, typer.Option(help="Where <stem>.scores.json and <stem>.predictions.jsonl go.")
        ] = Path("eval-results"),
        graph: Annotated[
            bool,
            typer.Option(
                "--graph",
                help="First build a knowledge graph over the corpus with the LLM (slow; "
                "resumable; kept in a store of its own), so hybrid+graph is measured.",
            ),
        ] = False,
        samples: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=16,
                help="With --graph: samples per passage (default: EVERGRAPH_EXTRACT__SAMPLES).",
            ),
        ] = None,
        concurrency: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=64,
                help="With --llm: questions through the loop at once, and requests in flight "
                "(default: EVERGRAPH_LLM__MAX_CONCURRENCY).",
            ),
        ] = None,
    ) -> None:
        """Retrieval recall@k and, with --llm, EvidenceLoop metrics on a multi-hop QA file.

        The corpus is every paragraph of every question in FILE, indexed once with
        the configured embedder and kept for the next run (--store-dir).
        Reported: recall@k of the gold paragraphs for bm25, dense, hybrid and
        hybrid+graph (n/a on a store without facts); with --llm, answer EM/F1,
        search sufficiency, knowledge utilisation and refusal rates.
        Writes <stem>.scores.json and <stem>.predictions.jsonl (one line per item:
        what was retrieved, answered or refused, and the evidence) to --out-dir.
        The LLM comes from the settings (EVERGRAPH_LLM__BASE_URL, __MODEL, ...).

        Examples:

          evergraph eval multihop hotpotqa_dev_distractor_100.jsonl

          evergraph eval multihop musique_ans_dev_100.jsonl --mode hybrid --k 5

          evergraph eval multihop ans.jsonl --llm --limit 15 --contrast unans.jsonl

          evergraph eval multihop hotpotqa_dev_distractor_100.jsonl --graph --samples 1
        """
        from evergraph.cli_ask_ops import eval_multihop, print_scores
        from evergraph.evals.multihop import K_VALUES, MODES

        scores = eval_multihop(
            settings(ctx).with_requests(concurrency),
            file,
            contrast=contrast,
            limit=limit,
            use_llm=llm,
            k_values=k or list(K_VALUES),
            modes=[m.value for m in mode] if mode else list(MODES),
            loop=LoopSettings(max_rounds=max_rounds, max_tokens=max_tokens),
            store_dir=store_dir,
            out_dir=out_dir,
            graph=graph,
            samples=samples,
            out=out,
        )
        print_scores(scores, out)
        stem = out_dir / file.stem
        out.print(f"wrote {stem}.scores.json and {stem}.predictions.jsonl")
