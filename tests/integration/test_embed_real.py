"""Real embeddings from the offline all-MiniLM-L6-v2 package."""

from pathlib import Path

import numpy as np
import pytest

from evergraph.config import EmbedSettings
from evergraph.embed.cache import VectorCache

pytestmark = pytest.mark.embed


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from evergraph.embed.sentence import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(EmbedSettings())


def test_real_vectors_rank_paraphrases_above_unrelated(embedder) -> None:  # type: ignore[no-untyped-def]
    vecs = embedder.embed(
        [
            "The Eiffel Tower is in Paris.",
            "Paris is home to the Eiffel Tower.",
            "Photosynthesis converts light into chemical energy.",
        ]
    )
    assert vecs.shape == (3, 384) and embedder.dim == 384
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > 0.7 > vecs[0] @ vecs[2]


def test_real_vectors_are_cached_by_text(tmp_path: Path) -> None:
    from evergraph.embed.sentence import SentenceTransformerEmbedder

    cached = SentenceTransformerEmbedder(EmbedSettings(), cache=VectorCache(tmp_path / "v.db"))
    first = cached.embed(["graph memory", "agents"])
    reopened = SentenceTransformerEmbedder(EmbedSettings(), cache=VectorCache(tmp_path / "v.db"))
    reopened._model = None  # a cache hit must not touch the model
    assert np.array_equal(reopened.embed(["agents", "graph memory"]), first[::-1])


def test_unknown_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    from evergraph.embed.sentence import SentenceTransformerEmbedder
    from evergraph.errors import EvergraphError

    with pytest.raises(EvergraphError, match="EVERGRAPH_EMBED__MODEL"):
        SentenceTransformerEmbedder(EmbedSettings(model=str(tmp_path / "nope")))
