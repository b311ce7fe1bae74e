"""PNG charts of the analysis (matplotlib, the `viz` extra): papers per period, the top
rising and fading concepts' share of papers, the most frequent concepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evergraph.errors import UsageError
from evergraph.mapping.analytics import Analysis

TOP = 6


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            "PNG charts need matplotlib", fix="pip install 'evergraph[viz]', or pass --no-png"
        ) from None
    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.clf()
    return path


def write_charts(a: Analysis, out: Path) -> list[Path]:
    plt = _pyplot()
    written: list[Path] = []
    x = range(len(a.periods))
    ticks = list(x)[:: max(1, len(a.periods) // 12)]

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(list(x), a.totals, color="#1f77b4")
    ax.set(title="Papers per period", ylabel="papers")
    ax.set_xticks(ticks, [a.periods[i] for i in ticks], rotation=45, ha="right")
    written.append(_save(fig, out / "papers_per_period.png"))

    for direction in ("rising", "fading"):
        chosen = [t for t in a.trends if t.direction() == direction]
        chosen = (chosen if direction == "rising" else chosen[::-1])[:TOP]
        fig, ax = plt.subplots(figsize=(8, 4))
        for t in chosen:
            shares = [c / n if n else float("nan") for c, n in zip(t.counts, a.totals, strict=True)]
            ax.plot(list(x), shares, marker="o", label=f"{a.name(t.concept)} (q={t.q:.2g})")
        ax.set(title=f"Top {direction} concepts", ylabel="share of papers")
        ax.set_xticks(ticks, [a.periods[i] for i in ticks], rotation=45, ha="right")
        if chosen:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no significantly {direction} concept", ha="center",
                    transform=ax.transAxes)  # fmt: skip
        written.append(_save(fig, out / f"{direction}.png"))

    top = sorted(a.frequency.items(), key=lambda kv: (-sum(kv[1]), a.name(kv[0])))[:20]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.barh([a.name(c) for c, _ in top][::-1], [sum(v) for _, v in top][::-1], color="#2ca02c")
    ax.set(title="Most frequent concepts", xlabel="papers")
    written.append(_save(fig, out / "top_concepts.png"))
    plt.close("all")
    return written
