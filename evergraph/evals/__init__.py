"""Evaluation harnesses that run the agents on benchmark files (above agents/ in the import
order: they call agents and retrieval, and nothing in the library calls them)."""
