"""Bridge rankings: the second hop of a question, found through a name its first passages give.

"Who is the spouse of the actress who played the fairy godmother in Shrek 2?" needs a passage
about Jennifer Saunders that the question never names: the name is in the first hop's
passage ("... Jennifer Saunders as the Fairy Godmother ..."), among a dozen others. Without a
reader (the EvidenceLoop's LLM) the bridge is guessed from where a name stands: the names of
the first passages' sentences that share the most words with the question, best passage
first. Each guess is searched densely with the question's words the first passages do not
answer ("Jennifer Saunders spouse actress"), keeping passages that write the name (or the
name without a title or kind, `name_forms`). A question comparing what it names ("Is X or Y
older?", `text.compares`) has no second hop and gets no bridge rankings.

Measured on the 100-question dev files (corpus = all their paragraphs, MiniLM), hybrid
recall@5 goes from .66 to .75 on MuSiQue (all 2-hop) and stays .955 on HotpotQA: the bridge
rankings are fused with the first ranking, whose first `keep` hits they never displace
(recall@2 is unchanged). With the true bridge name instead of the guess MuSiQue reaches .88;
the guess is right first in 48 of 100 questions, among the first two in 63 (three guesses:
74, for the same recall and one dense search more). Weights of the first guess (MuSiQue /
HotpotQA recall@5, measured with three guesses before dates, sentence openers and demonyms
were left out of them): .5 .705 / .955, .75 .725 / .955, 1.0 .73 / .94; five guesses at .75:
.735 / .95.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evergraph.retrieval.text import STOPWORDS, names, words

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_MONTHS = frozenset(m.lower() for m in calendar.month_name[1:])
_DEMONYM_ENDINGS = ("an", "ese", "ish", "ic")  # "American actress", "Chinese troops"


@dataclass(frozen=True)
class BridgeOptions:
    passages: int = 2  # first passages whose names are guessed at
    names: int = 2  # guesses searched (a dense search each); 3: same recall, 7 ms more
    depth: int = 20  # dense hits per guess, before keeping those that write the name
    hits: int = 10  # passages kept per guess
    weight: float = 0.75  # the first guess's weight in the fusion; the i-th gets weight / i
    keep: int = 3  # first hits of the first ranking that bridge rankings never displace


def _content(text: str) -> set[str]:
    return {w.lower() for w in words(text)} - STOPWORDS


def _dated(word: str) -> bool:
    return word[:1].isdigit() or word.lower() in _MONTHS


def _written_lower(text: str) -> set[str]:
    return {w for w in words(text) if w.islower()}


def _lone_name(word: str, text: str, lowered: set[str]) -> bool:
    """Is one capitalised word a name? Not when the text also writes it in lower case, only
    capitalises it to open a sentence ("Directed by", "Historians say"), or uses it as a
    demonym before a noun ("American actress")."""
    mark = re.escape(word)
    return (
        word.lower() not in lowered
        and re.search(rf"[\w,;:]\s+{mark}\b", text) is not None
        and not (word.endswith(_DEMONYM_ENDINGS) and re.search(rf"\b{mark}\s+[a-z]", text))
    )


def _candidate(name: str, text: str, lowered: set[str]) -> str:
    """`name` without the dates and numbers around it ("2010 American Revisionist Western"),
    or "" when no name is left. A bridge is a person, a place or a work: dates, sentence
    openers and demonyms took many of the first guesses (the bridge was the first guess in
    39 of 100 MuSiQue questions with them, 47 without)."""
    kept = name.split()
    while kept and _dated(kept[0]):
        kept.pop(0)
    while kept and _dated(kept[-1]):
        kept.pop()
    if len(kept) == 1 and not _lone_name(kept[0], text, lowered):
        return ""
    return " ".join(kept)


def bridge_names(question: str, passages: Sequence[str], *, limit: int) -> list[str]:
    """Names the passages give that the question does not, best guess first: by the words
    their sentence shares with the question, divided by the passage's rank."""
    asked = _content(question)
    said = {n.lower() for n in names(question)}
    text = " ".join(passages)
    lowered = _written_lower(f"{question} {text}")
    scores: dict[str, float] = {}
    for rank, passage in enumerate(passages, start=1):
        for sentence in _SENTENCE.split(passage):
            score = len(asked & _content(sentence)) / rank
            for found in names(sentence):
                name = _candidate(found, text, lowered)
                if not name or name.lower() in said:
                    continue
                if all(w.lower() in asked for w in words(name)):
                    continue
                scores[name] = max(scores.get(name, 0.0), score)
    return sorted(scores, key=lambda n: -scores[n])[:limit]  # stable: first seen wins ties


def bridge_queries(guesses: Sequence[str], question: str, passages: Sequence[str]) -> list[str]:
    """Each guess with the question's words that the first passages do not contain: what the
    question asks about the bridge."""
    known = set().union(STOPWORDS, *map(_content, passages))
    rest = [w for w in words(question) if w.lower() not in known]
    return [" ".join([name, *rest]) for name in guesses]


def name_forms(guesses: Sequence[str], passages: Sequence[str]) -> list[list[str]]:
    """How a passage may write each guessed name: as given, or without its first or last word
    while what is left is still a name ("King Henry III" as "Henry III", "Bohol Island" as
    "Bohol"). With them MuSiQue recall@5 goes from .735 to .75, and HotpotQA from .955 to
    .945 unless comparisons go without bridges (`text.compares`), as they do."""
    text = " ".join(passages)
    lowered = _written_lower(text)

    def forms(name: str) -> list[str]:
        kept = name.split()
        if len(kept) < 2:
            return [name]
        shorter = [rest for rest in (kept[1:], kept[:-1]) if not _dated(rest[0])]
        return [name] + [
            " ".join(rest)
            for rest in shorter
            if len(rest) > 1 or _lone_name(rest[0], text, lowered)
        ]

    return [forms(name) for name in guesses]
