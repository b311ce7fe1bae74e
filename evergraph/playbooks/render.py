"""Render a playbook into a prompt that never exceeds its token budget.

ACE's reference code lets playbooks grow past 100K tokens; here the budget is a hard limit.
When everything fits, everything is rendered; otherwise bullets are ranked by relevance to
the task (cosine similarity x usefulness) and added while they fit. Lines cite bullet ids so
that a generator can say which bullets it used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.playbooks.models import Bullet, Playbook
from evergraph.playbooks.vectors import bullet_vectors

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rate of BPE tokenizers on English text;
    pass the model's own tokenizer as `count_tokens` when exact counts matter."""
    return math.ceil(len(text) / 4)


class RenderedPlaybook(BaseModel):
    text: str
    bullet_ids: list[str]  # rendered bullets, in playbook order
    omitted: int  # bullets left out to respect the budget
    tokens: int  # of `text`, by the counter used


def _line(bullet: Bullet) -> str:
    return f"[{bullet.id}] helpful={bullet.helpful} harmful={bullet.harmful} :: {bullet.content}"


def render(
    playbook: Playbook,
    *,
    budget: int,
    task: str | None = None,
    embedder: Embedder | None = None,
    count_tokens: TokenCounter = estimate_tokens,
) -> RenderedPlaybook:
    """The playbook as prompt text of at most `budget` tokens.

    Without a task and embedder, an oversized playbook keeps its most useful bullets.
    """
    if budget < 0:
        raise UsageError(f"the token budget must be >= 0, got {budget}")
    chosen = list(playbook.bullets)
    text = _text(playbook, chosen)
    if count_tokens(text) > budget:
        chosen = _select(playbook, _ranked(playbook.bullets, task, embedder), budget, count_tokens)
        text = _text(playbook, chosen)
    while chosen and count_tokens(text) > budget:  # a counter not additive over lines
        chosen = chosen[:-1]
        text = _text(playbook, chosen)
    return RenderedPlaybook(
        text=text,
        bullet_ids=[b.id for b in _in_order(playbook, chosen)],
        omitted=len(playbook.bullets) - len(chosen),
        tokens=count_tokens(text),
    )


def _ranked(bullets: Sequence[Bullet], task: str | None, embedder: Embedder | None) -> list[Bullet]:
    """Most relevant first; ties (and the no-task case) go to usefulness, then age."""
    relevance = [1.0] * len(bullets)
    if task is not None and embedder is not None and bullets:
        sims = bullet_vectors(bullets, embedder) @ embedder.embed([task])[0]
        relevance = [max(float(s), 0.0) for s in sims]
    order = sorted(
        range(len(bullets)),
        key=lambda i: (-relevance[i] * bullets[i].usefulness, -bullets[i].usefulness, i),
    )
    return [bullets[i] for i in order]


def _select(
    playbook: Playbook, ranked: Sequence[Bullet], budget: int, count_tokens: TokenCounter
) -> list[Bullet]:
    """Greedy fill in rank order; a bullet that does not fit is skipped, smaller ones may."""
    chosen: list[Bullet] = []
    used = 0
    headed: set[str] = set()
    for bullet in ranked:
        cost = count_tokens(_line(bullet) + "\n")
        if bullet.section not in headed:
            cost += count_tokens(_header(bullet.section) + "\n")
        if used + cost <= budget:
            chosen.append(bullet)
            used += cost
            headed.add(bullet.section)
    return chosen


def _header(section: str) -> str:
    return f"## {section}"


def _in_order(playbook: Playbook, chosen: Sequence[Bullet]) -> list[Bullet]:
    ids = {b.id for b in chosen}
    return [b for s in playbook.sections for b in playbook.in_section(s) if b.id in ids]


def _text(playbook: Playbook, chosen: Sequence[Bullet]) -> str:
    lines: list[str] = []
    bullets = _in_order(playbook, chosen)
    for section in playbook.sections:
        rows = [_line(b) for b in bullets if b.section == section]
        if rows:
            lines += [_header(section), *rows]
    return "\n".join(lines)
