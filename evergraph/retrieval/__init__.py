"""Hybrid retrieval and the evidence ledger: a library the EvidenceLoop agent calls (it never
imports agents/). `hybrid` fuses BM25, dense vectors, `titles` (documents named by the query
or by the best passages) and `graph_walk` (entity linking and personalised PageRank over
facts) by reciprocal rank fusion; `ledger` keeps the evidence an answer relies on, with quotes
checked against their chunks; `index` writes passages."""
