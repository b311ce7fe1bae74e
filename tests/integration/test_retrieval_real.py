"""Hybrid retrieval with real MiniLM embeddings on a small real corpus: the paragraphs of the
first 10 HotpotQA questions of ../shared/data (100 paragraphs, 2 gold per question).

Floors were measured on this set (recall@5: bm25 0.90, dense 0.75, bm25+dense 0.85, hybrid
with title links 0.95; one gold paragraph is 0.05) and are set one paragraph below, so a
regression fails while a tie broken the other way does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evergraph.embed.base import Embedder
from evergraph.evals.multihop import MODES
from evergraph.evals.multihop_data import Item, corpus, read_items, recall_at
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.retrieval.hybrid import HybridRetriever
from evergraph.retrieval.index import index_passages
from tests.integration.test_embed_real import embedder  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.embed

HOTPOT = (
    Path(__file__).resolve().parents[3] / "shared/data/hotpotqa/hotpotqa_dev_distractor_100.jsonl"
)
FLOORS = {"bm25": 0.85, "dense": 0.7, "bm25+dense": 0.8, "hybrid": 0.9}


@pytest.fixture(scope="module")
def items() -> list[Item]:
    if not HOTPOT.is_file():
        pytest.skip(f"{HOTPOT} is not here")
    return read_items(HOTPOT)[:10]


@pytest.fixture(scope="module")
def retriever(
    items: list[Item],
    embedder: Embedder,  # noqa: F811  (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HybridRetriever]:
    with SQLiteGraphStore(tmp_path_factory.mktemp("real") / "store.db") as store:
        index_passages(store, embedder, corpus(items))
        yield HybridRetriever(store, embedder)


def recall5(items: list[Item], retriever: HybridRetriever, mode: str) -> float:
    found = [
        recall_at(
            [h.chunk_id for h in retriever.search(i.question, k=5, modes=MODES[mode])], i.gold, 5
        )
        for i in items
    ]
    return sum(found) / len(found)


def test_recall_at_5_stays_above_the_measured_floors(
    items: list[Item], retriever: HybridRetriever
) -> None:
    recall = {mode: recall5(items, retriever, mode) for mode in FLOORS}
    assert all(recall[m] >= floor for m, floor in FLOORS.items()), recall
    assert recall["bm25+dense"] >= min(recall["bm25"], recall["dense"]), recall
    assert recall["hybrid"] >= recall["bm25+dense"], recall  # links must pay their way


def test_hybrid_hits_carry_the_ranks_that_made_them(
    items: list[Item], retriever: HybridRetriever
) -> None:
    hits = retriever.search(items[0].question, k=5)
    assert len(hits) == 5 and all(h.text and h.ranks for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
