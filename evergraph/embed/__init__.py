"""Sentence embeddings behind a small protocol, cached by text hash."""
