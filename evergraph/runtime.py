"""The composition root: builds clients from settings, once, when an app starts.

Library code receives these objects; only entry points (CLI, server, examples) call here.
"""

from __future__ import annotations

from evergraph.config import Settings
from evergraph.embed.base import Embedder
from evergraph.embed.cache import VectorCache
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.factory import open_store
from evergraph.llm.cache import ResponseCache
from evergraph.llm.openai_compat import OpenAICompatLLM


def build_llm(settings: Settings) -> OpenAICompatLLM:
    cache = ResponseCache(settings.cache_path / "llm.db") if settings.llm.cache else None
    return OpenAICompatLLM(settings.llm, cache=cache)


def build_embedder(settings: Settings) -> Embedder:
    from evergraph.embed.sentence import SentenceTransformerEmbedder  # imports torch: lazily

    cache = VectorCache(settings.cache_path / "vectors.db") if settings.embed.cache else None
    return SentenceTransformerEmbedder(settings.embed, cache=cache)


def build_store(settings: Settings) -> GraphStore:
    return open_store(settings.store_location, neo4j=settings.neo4j)
