"""Evergraph: a memory layer for LLM agents that grows without collapsing."""

__version__ = "0.1.0"
