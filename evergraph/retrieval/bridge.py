"""Bridge rankings: the second hop of a question, found through a name its first passages give.

"Who is the spouse of the actress who played the fairy godmother in Shrek 2?" needs a passage
about Jennifer Saunders that the question never names: the name is in the first hop's
passage ("... Jennifer Saunders as the Fairy Godmother ..."), among a dozen others. Without a
reader (the EvidenceLoop's LLM) the bridge is guessed from where a name stands: the names of
the first passages' sentences that share the most words with the question, best passage
first. Each guess is searched densely with the question's words the first passages do not
answer ("Jennifer Saunders spouse actress"), keeping passages that write the name.

Measured on the 100-question dev files (corpus = all their paragraphs, MiniLM), hybrid
recall@5 goes from .66 to .725 on MuSiQue (all 2-hop) and stays .955 on HotpotQA: the bridge
rankings are fused with the first ranking, whose first `keep` hits they never displace
(recall@2 is unchanged). With the true bridge name instead of the guess MuSiQue reaches .88;
the guess is right first in 37 of 100 questions, among the three guesses in 64. Weights of
the first guess (MuSiQue / HotpotQA recall@5): .5 .705 / .955, .75 .725 / .955, 1.0 .73 / .94;
five guesses at .75: .735 / .95.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from evergraph.retrieval.text import STOPWORDS, names, words

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class BridgeOptions:
    passages: int = 2  # first passages whose names are guessed at
    names: int = 3  # guesses searched (a dense search each)
    depth: int = 20  # dense hits per guess, before keeping those that write the name
    hits: int = 10  # passages kept per guess
    weight: float = 0.75  # the first guess's weight in the fusion; the i-th gets weight / i
    keep: int = 3  # first hits of the first ranking that bridge rankings never displace


def _content(text: str) -> set[str]:
    return {w.lower() for w in words(text)} - STOPWORDS


def bridge_names(question: str, passages: Sequence[str], *, limit: int) -> list[str]:
    """Names the passages give that the question does not, best guess first: by the words
    their sentence shares with the question, divided by the passage's rank."""
    asked = _content(question)
    said = {n.lower() for n in names(question)}
    scores: dict[str, float] = {}
    for rank, passage in enumerate(passages, start=1):
        for sentence in _SENTENCE.split(passage):
            score = len(asked & _content(sentence)) / rank
            for name in names(sentence):
                if name.lower() in said or all(w.lower() in asked for w in words(name)):
                    continue
                scores[name] = max(scores.get(name, 0.0), score)
    return sorted(scores, key=lambda n: -scores[n])[:limit]  # stable: first seen wins ties


def bridge_queries(guesses: Sequence[str], question: str, passages: Sequence[str]) -> list[str]:
    """Each guess with the question's words that the first passages do not contain: what the
    question asks about the bridge."""
    known = set().union(STOPWORDS, *map(_content, passages))
    rest = [w for w in words(question) if w.lower() not in known]
    return [" ".join([name, *rest]) for name in guesses]
