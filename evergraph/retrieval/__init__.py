"""Hybrid retrieval (BM25 + vectors + graph walks) and the evidence ledger (to come)."""
