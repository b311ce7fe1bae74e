"""Embedding throughput (target >= 400 sentences/s on 2 cores).

Baseline, measured in the same run: sentence-transformers' own `encode` with its defaults.
Real sentences come from ../shared/data (HotpotQA paragraphs) when present.

    .venv/bin/python benchmarks/bench_embed.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from evergraph.config import EmbedSettings
from evergraph.embed.cache import VectorCache
from evergraph.embed.sentence import SentenceTransformerEmbedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa"


def sentences(n: int, max_chars: int) -> list[str]:
    out: list[str] = []
    pattern = re.compile(r"[A-Z][^.!?\"\\]{20," + str(max_chars) + r"}[.!?]")
    for f in sorted(DATA.glob("*.json*")):
        out.extend(pattern.findall(f.read_text()))
        if len(out) >= n:
            break
    if len(out) < n:  # no data set beside the repo: synthetic but varied sentences
        out += [
            f"Sentence number {i} talks about topic {i % 97} and item {i * 7}." for i in range(n)
        ]
    return list(dict.fromkeys(out))[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--max-chars", type=int, default=200, help="longest sentence kept")
    args = ap.parse_args()
    texts = sentences(args.n, args.max_chars)
    with tempfile.TemporaryDirectory() as tmp:
        emb = SentenceTransformerEmbedder(EmbedSettings(), cache=VectorCache(Path(tmp) / "v.db"))
        emb.embed(texts[:64])  # warm-up
        t0 = time.perf_counter()
        emb._model.encode(texts, show_progress_bar=False)
        base = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb.embed(texts)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb.embed(texts)
        warm = time.perf_counter() - t0
    n = len(texts)
    figures = {
        "sentences": n,
        "mean_chars": round(sum(map(len, texts)) / n, 1),
        "baseline_st_encode_per_s": round(n / base, 1),
        "evergraph_cold_per_s": round(n / cold, 1),
        "evergraph_cached_per_s": round(n / warm, 1),
        "cold_vs_baseline": round(base / cold, 2),
        "target_per_s": 400,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
