"""`evergraph eval multihop FILE`: retrieval recall and EvidenceLoop metrics on a multi-hop file.

The corpus is every paragraph of every question in the file (not just the items evaluated),
indexed into a SQLite store of its own with real embeddings. Reported:

- retrieval recall@k of the gold supporting paragraphs, per retriever: bm25, dense,
  bm25+dense (RRF), hybrid (bm25 + dense + title links, RRF) and hybrid+graph. The graph mode
  needs facts: on a text-only store it is reported as n/a with the reason; with a graph build
  (`--graph`, `multihop_graph.py`) the LLM first reads the corpus into a graph.
- with an LLM, end to end through the EvidenceLoop: answer EM/F1 and WebDetective's factorised
  metrics. *Search sufficiency*: the ledger holds evidence from every gold paragraph.
  *Knowledge utilisation*: EM/F1 over the items whose search was sufficient. *Refusal
  quality*: how often the loop refuses when its evidence is insufficient, and, with a contrast
  file of unanswerable twins, how often it refuses those and answers their twins.

Writes `<stem>.scores.json` and `<stem>.predictions.jsonl` (one line per item: what each
retriever ranked first, the answer or refusal, citations and evidence) to `out_dir`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from evergraph.agents.evidence_loop import Answer, LoopSettings, Refusal, ask
from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.evals.multihop_data import (
    Item,
    answer_scores,
    corpus,
    loop_metrics,
    mean,
    read_items,
    recall_at,
    refusal_metrics,
    removed_passages,
)
from evergraph.evals.multihop_graph import GraphBuild, build_graph
from evergraph.evals.multihop_journal import LoopJournal
from evergraph.graph.models import content_id
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM
from evergraph.retrieval.hybrid import HybridRetriever, Mode
from evergraph.retrieval.index import Passage, index_passages

log = logging.getLogger(__name__)

MODES: dict[str, frozenset[Mode]] = {
    "bm25": frozenset({Mode.BM25}),
    "dense": frozenset({Mode.DENSE}),
    "bm25+dense": frozenset({Mode.BM25, Mode.DENSE}),
    "hybrid": frozenset({Mode.BM25, Mode.DENSE, Mode.NAMED, Mode.TITLES, Mode.BRIDGE}),
    "hybrid+graph": frozenset(Mode),
}
K_VALUES = (2, 5)
Progress = Callable[[str, int, int], None]  # a phase's label, its steps done, their total
NO_GRAPH = (
    "n/a: the store has no facts (text-only corpus); run with --graph to have the LLM build "
    "a graph over the corpus first"
)


def open_corpus(
    passages: Sequence[Passage],
    *,
    store_dir: Path,
    name: str,
    embedder: Embedder,
    graph: GraphBuild | None = None,
    progress: Progress | None = None,
) -> SQLiteGraphStore:
    """A store holding exactly these passages, one file per distinct corpus and embedder (and
    graph build: `multihop_graph.py`), kept for the next run with its embeddings and graph;
    `progress` hears the indexing as "indexing NAME"."""
    digest = content_id(embedder.name, *sorted(p.chunk_id for p in passages))[:10]
    suffix = f"-graph-{graph.tag}" if graph else ""
    store = SQLiteGraphStore(store_dir / f"{name}-{digest}{suffix}.db")
    try:
        if graph is not None:
            checkpoints = store_dir / f"{name}-{digest}{suffix}.checkpoints.db"
            asyncio.run(
                build_graph(store, passages, graph, embedder=embedder, checkpoints=checkpoints)
            )
        report = partial(progress, f"indexing {name}") if progress else None
        index_passages(store, embedder, passages, progress=report)
    except BaseException:
        store.close()
        raise
    return store


def retrieval_recall(
    items: Sequence[Item],
    retriever: HybridRetriever,
    *,
    modes: Sequence[str],
    k_values: Sequence[int],
    rows: Mapping[str, dict[str, Any]],
    titles: Mapping[str, str],
) -> dict[str, Any]:
    """Mean recall@k per mode; each item's top chunks go to its predictions row."""
    has_graph = retriever.store.stats().facts > 0
    depth = max(k_values)
    report: dict[str, Any] = {}
    for mode in modes:
        if Mode.GRAPH in MODES[mode] and not has_graph:
            report[mode] = {f"recall@{k}": None for k in k_values} | {"note": NO_GRAPH}
            continue
        recalls: dict[int, list[float]] = {k: [] for k in k_values}
        for item in items:
            hits = retriever.search(item.question, k=depth, modes=MODES[mode])
            ranked = [h.chunk_id for h in hits]
            for k in k_values:
                recalls[k].append(recall_at(ranked, item.gold, k))
            rows[item.id].setdefault("retrieved", {})[mode] = [titles.get(c, c) for c in ranked]
        report[mode] = {f"recall@{k}": mean(recalls[k]) for k in k_values}
    return report


def _prediction(result: Answer | Refusal, item: Item, titles: Mapping[str, str]) -> dict[str, Any]:
    """One item's predictions row: the outcome, its evidence, and how it scores."""
    outcome: dict[str, Any]
    if isinstance(result, Answer):
        outcome = {"kind": "answer", "answer": result.text, "citations": result.citations}
    else:
        missing = [h.question for h in result.missing_hops]
        outcome = {"kind": "refusal", "reason": result.reason, "missing_hops": missing}
    ledger = result.ledger
    read = {c for h in result.hops for c in h.read}
    cited = {e.chunk_id for e in ledger.entries if e.id in outcome.get("citations", [])}
    em, f1 = answer_scores(outcome.get("answer"), item.answers)
    return outcome | {
        "hops": [
            {"question": h.question, "answer": h.answer, "status": h.status} for h in result.hops
        ],
        "evidence": [
            e.model_dump(include={"id", "hop", "answer", "quote", "verdict"})
            | {"title": titles.get(e.chunk_id, "")}
            for e in ledger.entries
        ],
        "read_titles": sorted(titles.get(c, c) for c in read),
        "search_sufficient": item.gold <= ledger.chunk_ids(),
        "read_sufficient": item.gold <= read,
        "cited_gold": len(cited & item.gold) / len(cited) if cited else None,
        "em": em,
        "f1": f1,
        "tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
        "llm_requests": result.usage.requests,
    }


@dataclass(frozen=True)
class _Asker:
    """Runs the EvidenceLoop over items, `concurrency` questions at a time: a model server
    batches the requests in flight, so the eval's hour shrinks."""

    embedder: Embedder
    llm: LLM
    settings: LoopSettings
    journal: LoopJournal
    concurrency: int = 1
    progress: Progress | None = None

    async def items(
        self,
        items: Sequence[Item],
        store: SQLiteGraphStore,
        rows: Mapping[str, dict[str, Any]],
        titles: Mapping[str, str],
    ) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        done = 0

        async def one(item: Item) -> None:
            nonlocal done
            loop = self.journal.get(item.id, item.question)
            if loop is None:
                async with slots:
                    started = time.perf_counter()
                    result = await ask(
                        item.question,
                        store=store,
                        embedder=self.embedder,
                        llm=self.llm,
                        settings=self.settings,
                    )
                loop = _prediction(result, item, titles) | {
                    "seconds": round(time.perf_counter() - started, 1)
                }
                self.journal.add(item.id, item.question, loop)
            rows[item.id]["loop"] = loop
            done += 1
            outcome = loop.get("answer") or loop.get("reason")
            log.info("%d/%d %s: %s", done, len(items), item.id, outcome)

        await asyncio.gather(*(one(item) for item in items))

    async def everything(
        self,
        items: Sequence[Item],
        store: SQLiteGraphStore,
        rows: Mapping[str, dict[str, Any]],
        titles: Mapping[str, str],
        contrast: Path | None,
        twins: Sequence[Item],
        store_dir: Path,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """The items, then their contrast twins: in one event loop, which the LLM client's
        connections belong to."""
        await self.items(items, store, rows, titles)
        if contrast is None:
            return {}, {}
        return await self.contrast(contrast, twins, rows, store_dir)

    async def contrast(
        self, path: Path, twins: Sequence[Item], rows: Mapping[str, dict[str, Any]], store_dir: Path
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """Ask the unanswerable twins of the evaluated items over their own file's corpus,
        with every removed paragraph left out (another question's copy would bring it back)."""
        everything = read_items(path)
        chosen = [c for c in everything if c.derived_from in rows]
        removed = removed_passages(everything, twins)
        passages = corpus(everything, leave_out=[p.chunk_id for p in removed.values()])
        pool = {p.chunk_id for item in everything for p in item.passages}
        titles = {p.chunk_id: p.title for item in [*everything, *twins] for p in item.passages}
        contrast_rows = {item.id: _row(item, titles) for item in chosen}
        with open_corpus(
            passages,
            store_dir=store_dir,
            name=path.stem,
            embedder=self.embedder,
            progress=self.progress,
        ) as store:
            await self.items(chosen, store, contrast_rows, titles)
        return contrast_rows, {
            "file": str(path),
            "items": len(chosen),
            "corpus_passages": len(passages),
            "removed_paragraphs_left_out": len({p.chunk_id for p in removed.values()}),
            # those the pooled corpus would otherwise have brought back from another question
            "removed_but_elsewhere_in_file": sum(p.chunk_id in pool for p in removed.values()),
        }


def run_multihop_eval(
    path: Path,
    *,
    store_dir: Path,
    embedder: Embedder,
    llm: LLM | None,
    k_values: Sequence[int] = K_VALUES,
    limit: int | None = None,
    out_dir: Path,
    modes: Sequence[str] = tuple(MODES),
    contrast: Path | None = None,
    loop: LoopSettings | None = None,
    graph: GraphBuild | None = None,
    concurrency: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate retrieval (and with `llm`, the EvidenceLoop) on the first `limit` items of a
    HotpotQA/MuSiQue-format JSONL file; the scores, also written to `out_dir`.

    With `graph`, the corpus is first read by that model into a knowledge graph (its own
    store, `multihop_graph.py`), and every retriever runs over that store.

    With `llm`, `concurrency` questions run through the loop at a time, each kept in a
    journal beside the scores as it ends (`multihop_journal.py`): an interrupted run resumes.

    `contrast` is a file of unanswerable twins (`derived_from`, `removed_supporting_idx`, as
    DERIVED_musique_unanswerable_100.jsonl): with an LLM, the twins of the evaluated items
    are asked too, over a corpus of that file's paragraphs without any removed paragraph.

    `progress` hears the indexing of each corpus, labelled "indexing STEM".
    """
    unknown = set(modes) - set(MODES)
    if unknown:
        raise UsageError(f"unknown modes {sorted(unknown)}", fix=f"choose from {list(MODES)}")
    settings = loop or LoopSettings()
    items = read_items(path)
    chosen = items[:limit] if limit else items
    passages = corpus(items)
    titles = {p.chunk_id: p.title for p in passages}
    rows = {item.id: _row(item, titles) for item in chosen}
    scores: dict[str, Any] = {
        "file": str(path),
        "items": len(chosen),
        "corpus_passages": len(passages),
        "embedder": embedder.name,
    }
    started = time.perf_counter()
    with open_corpus(
        passages,
        store_dir=store_dir,
        name=path.stem,
        embedder=embedder,
        graph=graph,
        progress=progress,
    ) as store:
        scores["store"] = store.location
        scores["index_seconds"] = round(time.perf_counter() - started, 1)
        if graph is not None:
            stats = store.stats()
            scores["graph"] = {
                "model": graph.llm.model,
                "samples": graph.options.samples,
                "entities": stats.entities,
                "facts": stats.facts,
                "evidence": stats.evidence,
            }
        answerable = [i for i in chosen if i.answerable]
        scores["retrieval"] = retrieval_recall(
            answerable,
            HybridRetriever(store, embedder),
            modes=modes,
            k_values=k_values,
            rows=rows,
            titles=titles,
        )
        contrast_rows: dict[str, dict[str, Any]] = {}
        if llm is not None:
            journal = LoopJournal(
                out_dir / f"{path.stem}.loop-journal.jsonl",
                model=llm.model,
                settings=settings.model_dump_json(),
            )
            if journal.resumed:
                log.info("resuming: %d questions answered by an interrupted run", journal.resumed)
            asker = _Asker(embedder, llm, settings, journal, concurrency, progress)
            contrast_rows, contrast_info = asyncio.run(
                asker.everything(chosen, store, rows, titles, contrast, items, store_dir)
            )
            if contrast_info:
                scores["contrast"] = contrast_info
    if llm is not None:
        scores["llm"] = {"model": llm.model, "settings": settings.model_dump()}
        scores["loop"] = loop_metrics([rows[i.id]["loop"] for i in chosen if i.answerable])
        pairs = [
            (r["derived_from"], r["loop"])
            for r in [*rows.values(), *contrast_rows.values()]
            if not r["answerable"]
        ]
        twins = {i: r["loop"] for i, r in rows.items() if r["answerable"]}
        scores["refusal"] = refusal_metrics(twins, pairs)
    _write(out_dir, path.stem, scores, [*rows.values(), *contrast_rows.values()])
    if llm is not None:
        journal.remove()
    return scores


def _row(item: Item, titles: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": item.id,
        "question": item.question,
        "answers": list(item.answers),
        "answerable": item.answerable,
        "derived_from": item.derived_from,
        "gold_titles": sorted(titles[c] for c in item.gold),
    }


def _write(
    out_dir: Path, stem: str, scores: dict[str, Any], rows: Iterable[dict[str, Any]]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{stem}.predictions.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out_dir / f"{stem}.scores.json").write_text(json.dumps(scores, indent=2) + "\n")
