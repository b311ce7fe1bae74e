"""What the graph commands of the CLI do: `ingest`, `facts`, `entity`, `export`.

`cli.py` declares the commands (options, help); the work and the rendering live here so that
the declarations stay readable. Every user mistake is a `UsageError` (one message, no
traceback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table

from evergraph.agents.build import (
    Builder,
    Progress,
    Summary,
    constructor,
    order,
)
from evergraph.agents.checkpoints import open_checkpointer
from evergraph.agents.extract import NOT_TRIPLES, ExtractOptions, Extractor
from evergraph.config import Settings
from evergraph.errors import UsageError
from evergraph.graph import views
from evergraph.graph.ingest import parse_date, read_documents
from evergraph.graph.models import Change, Entity, Fact
from evergraph.graph.schema import GraphSchema, load_schema
from evergraph.graph.store.base import GraphStore

DATE_FORMS = "2019, 2019-03, 2019-03-31 or an ISO date-time such as 2019-03-31T12:00:00Z"
CHECKPOINTS = "checkpoints.db"


def parse_when(text: str | None, option: str) -> datetime | None:
    """A lenient date for `--as-of` / `--recorded-at`; a year or month means its first day."""
    if text is None:
        return None
    try:
        when = parse_date(text)
    except ValueError:
        when = None
    if when is None:
        raise UsageError(f"{option} {text!r} is not a date", fix=f"write {DATE_FORMS}")
    return when


# --- ingest -------------------------------------------------------------------------------------


def _rates(p: Progress) -> str:
    seconds = max(p.elapsed_s, 1e-9)
    return (
        f"{p.docs_this_run / seconds:.2f} docs/s  {p.facts_this_run / seconds:.1f} facts/s  "
        f"{p.tokens_this_run:,} tokens"
    )


def extract_options(settings: Settings, samples: int | None) -> ExtractOptions:
    """The extraction settings with `--samples`; n samples at temperature 0 is a mistake."""
    options = ExtractOptions.from_settings(settings.extract, samples=samples)
    if options.samples > 1 and settings.llm.temperature == 0:
        raise UsageError(
            f"{options.samples} samples at temperature 0 would all agree",
            fix="set EVERGRAPH_LLM__TEMPERATURE above 0 (e.g. 0.7), or pass --samples 1",
        )
    return options


@contextmanager
def build_bar(out: Console) -> Iterator[Callable[[Progress], None]]:
    """A progress bar for a build job (documents, rates, tokens); yields its callback."""
    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rates]}"),
        console=out,
    ) as bar:
        task = bar.add_task("documents", total=None, rates="")

        def progress(p: Progress) -> None:
            bar.update(task, total=p.total, completed=p.done, rates=_rates(p))

        yield progress


def ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    schema_path: Path | None,
    samples: int | None,
    limit: int | None,
    out: Console,
) -> Summary:
    """Read, extract and integrate `paths` into the configured store, with a progress bar."""
    from evergraph.runtime import build_embedder, build_llm, build_store

    schema = load_schema(schema_path) if schema_path else GraphSchema()
    documents = order(list(read_documents(paths)))[:limit]
    if not documents:
        raise UsageError("no documents to ingest", fix="pass files with text (see --help)")
    options = extract_options(settings, samples)
    store = build_store(settings)
    try:
        with out.status("loading the embedder"):
            embedder = build_embedder(settings)
        with build_bar(out) as progress:

            async def go() -> Summary:
                async with build_llm(settings) as llm:
                    builder = Builder(
                        store,
                        Extractor(llm, schema, options),
                        constructor(store, embedder, schema),
                        concurrency=settings.llm.max_concurrency,
                        progress=progress,
                    )
                    async with open_checkpointer(settings.home / CHECKPOINTS) as saver:
                        return await builder.run(documents, saver)

            return asyncio.run(go())
    finally:
        store.close()


def print_summary(summary: Summary, out: Console) -> None:
    t = summary.totals
    minutes = summary.elapsed_s / 60
    per_doc = max(t.documents, 1)
    table = Table(
        title="ingest summary" + (" (resumed)" if summary.resumed else ""), show_header=False
    )
    table.add_column()
    table.add_column(justify="right")
    rows = [
        ("documents integrated", f"{t.documents} of {summary.total}"),
        ("already in the store", t.skipped),
        ("chunks", t.chunks),
        ("entities created", t.entities),
        ("facts created", t.facts),
        ("facts reinforced", t.reinforced),
        ("triples rejected", t.rejected),
        *((f"  {r}", n) for r, n in sorted(t.reasons.items()) if r not in NOT_TRIPLES),
        *((r.replace("_", " "), t.reasons.get(r, 0)) for r in sorted(NOT_TRIPLES)),
        ("entity merges", t.merges),
        ("facts retired", t.retired),
        ("LLM requests", f"{t.requests} ({t.requests / per_doc:.1f} per document)"),
        ("tokens", f"{t.tokens:,} ({t.tokens / per_doc:,.0f} per document)"),
        ("time", f"{summary.elapsed_s:.1f} s"),
        ("documents/minute", f"{t.documents / minutes:.1f}" if minutes > 0 else "-"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)


# --- reading ------------------------------------------------------------------------------------


def find_entities(store: GraphStore, name: str) -> list[Entity]:
    found = store.find_entities(name)
    if not found:
        raise UsageError(
            f"no entity named {name!r} in {store.location}",
            fix="check the spelling (names and aliases match ignoring case); "
            "`evergraph stats` shows what the store holds",
        )
    return found


def _names(store: GraphStore, facts: Sequence[Fact]) -> dict[str, str]:
    ids = {i for f in facts for i in (f.subject_id, f.object_id) if i}
    return {e.id: e.name for e in store.get_entities(sorted(ids))}


def _day(when: datetime | None) -> str:
    return when.date().isoformat() if when else "…"


def facts_table(store: GraphStore, title: str, facts: Sequence[Fact]) -> Table:
    names = _names(store, facts)
    table = Table(title=title)
    for column in ("subject", "predicate", "object", "conf.", "support", "valid", "status"):
        table.add_column(column)
    for f in facts:
        obj = names.get(f.object_id, f.object_id) if f.object_id else repr(f.object_value)
        table.add_row(
            names.get(f.subject_id, f.subject_id),
            f.predicate,
            obj,
            f"{f.confidence:.2f}",
            str(f.support),
            f"{_day(f.valid_from)} to {_day(f.valid_to)}",
            f.status.value + (f" ({f.retire_reason})" if f.retire_reason else ""),
        )
    return table


def show_facts(
    store: GraphStore,
    name: str,
    *,
    as_of: datetime | None,
    recorded_at: datetime | None,
    predicate: str | None,
    out: Console,
) -> None:
    when = " ".join(
        part
        for part in (
            f"as of {as_of.date()}" if as_of else "",
            f"as recorded at {recorded_at.isoformat()}" if recorded_at else "",
        )
        if part
    )
    for entity in find_entities(store, name):
        facts = store.facts_about(
            entity.id, predicate=predicate, as_of=as_of, recorded_at=recorded_at
        )
        title = f"{entity.name} ({entity.type}) {when}".strip()
        out.print(facts_table(store, title, facts) if facts else f"{title}: no facts")


def show_top_entities(
    store: GraphStore, *, top: int, as_of: datetime | None, names_only: bool, out: Console
) -> None:
    graph = views.to_networkx(store, as_of=as_of)
    ranks = views.pagerank(graph)
    best = views.top({n: float(d) for n, d in views.degree(graph).items() if d}, top)
    if names_only:
        for node, _ in best:
            print(graph.nodes[node]["name"])  # plain stdout: no rich markup or wrapping
        return
    table = Table(title="most connected entities" + (f" as of {as_of.date()}" if as_of else ""))
    for column in ("entity", "type", "facts", "pagerank"):
        table.add_column(column)
    for node, facts in best:
        data = graph.nodes[node]
        table.add_row(data["name"], data["type"], f"{facts:.0f}", f"{ranks[node]:.3f}")
    if best:
        out.print(table)
    elif store.stats().sources:
        out.print(
            "no facts connect any entities yet: every proposed triple was rejected (the ingest "
            "summary says why); more samples (--samples 5) or a larger model help"
        )
    else:
        out.print("no facts yet: run `evergraph ingest` first")


def show_entity(store: GraphStore, name: str, *, out: Console) -> None:
    for entity in find_entities(store, name):
        out.print(f"[bold]{entity.name}[/] ({entity.type})  id {entity.id}")
        if entity.aliases:
            out.print("aliases: " + ", ".join(entity.aliases))
        out.print(
            f"seen {entity.mentions} time(s), {_day(entity.first_seen)} to {_day(entity.last_seen)}"
        )
        for merge in entity.merges:
            undone = f", undone {merge.undone_at.date()}" if merge.undone_at else ""
            out.print(f"merged {merge.name!r} by {merge.rule} ({merge.score:.2f}){undone}")
        facts = store.facts_about(entity.id, history=True)
        if facts:
            out.print(facts_table(store, "facts, past and present", facts))
        for f in facts:
            for ev in store.evidence_for(f.id):
                source = store.get_source(ev.source_id)
                label = source.title if source and source.title else ev.source_id
                out.print(
                    f"  [dim]{f.predicate}[/] ← {label}: “{ev.quote}” "
                    f"(agreement {ev.agreement:.2f}, {ev.model})"
                )
        ids = {entity.id, *(f.id for f in facts)}
        history = Table(title="history (change log)")
        for column in ("seq", "at", "op", "kind", "item"):
            history.add_column(column)
        for change in changes_of(store, ids):
            history.add_row(
                str(change.seq), change.at.isoformat(timespec="seconds"), change.op,
                change.kind, change.item_id[:12],
            )  # fmt: skip
        out.print(history)


def changes_of(store: GraphStore, ids: set[str]) -> list[Change]:
    """Every change-log entry about the given items, oldest first (reads the whole log)."""
    found: list[Change] = []
    since = 0
    while page := store.changes(since=since, limit=1000):
        found += [c for c in page if c.item_id in ids]
        since = page[-1].seq
    return found
