"""The evidence ledger: every retrieved item an answer relies on, with a verbatim quote.

The model proposes claims; the checks here dispose, deterministically: a quote enters the
ledger only as the span of the chunk it matches (`ground_quote`), and only if the claimed
answer is in that span (`answer_in`). So every ledger quote is verbatim in its chunk, and a
citation to an entry points at text that states the answer. A small reader often writes its
claim as the quote ("Anna Benson's husband is Kris Benson" for "... ex-wife of former pitcher
Kris Benson"); such a quote stands for the chunk's sentence that states the answer and holds
most of the quote's other words (`restated`), and the ledger keeps that sentence.

A hop (sub-question) is resolved by majority over its entries' normalised answers; entries
that disagree with the winner are marked contradicted. Between answers with as many entries,
the one whose quote speaks of more of the sub-question's words wins: a small reader often
offers a second answer from a passage about something else ("Van Wert County" for the county
of Van Hook Township, quoted from Liberty Township's article). A tie on both leaves the hop
contested.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from evergraph.retrieval.text import (
    STOPWORDS,
    YES_NO,
    answers_yes_no,
    find_elided,
    find_span,
    names,
    names_any,
    normalize_answer,
    offers_choice,
    words,
)

QUOTE_MATCH = 90.0  # rapidfuzz partial ratio (0-100) a quote needs to count as verbatim
MAX_QUOTE_CHARS = 300  # longer quotes are narrowed to the sentence that states the answer
# An answer is a name, date or short phrase; a small model that copies a passage as its answer
# would otherwise pass `answer_in` (the passage is in itself) and become a hop's answer.
MAX_ANSWER_WORDS = 12
_FUZZY_MIN_CHARS = 5
RESTATED_SHARE = 0.5  # of a restated quote's words (the answer's aside) its sentence must hold
STEM = 4  # letters of a word compared when a quote is checked against its question
# A sentence ends at . ! ? before a capital, digit or quote, but not after an initial or an
# abbreviation ("U.S. state", "John F. Kennedy", "Mr. Smith"); a line break always ends one.
_SENTENCE = re.compile(
    r"(?<=[.!?])(?<!\.[A-Z]\.)(?<!\b[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs)\.)\s+(?=[A-Z0-9\"'(])"
    r"|\n+"
)


class Verdict(StrEnum):
    SUPPORTED = "supported"  # agrees with the answer its hop resolved to
    CONTRADICTED = "contradicted"  # states another answer for the same hop


class LedgerEntry(BaseModel):
    id: str  # "E1", "E2", ... in the order entries were added
    hop: int = Field(ge=1)  # the sub-question this entry serves (1-based)
    sub_question: str
    claim: str
    answer: str
    source_id: str
    chunk_id: str
    quote: str  # verbatim in the chunk
    verdict: Verdict = Verdict.SUPPORTED
    round: int = Field(0, ge=0)


@dataclass(frozen=True)
class Resolution:
    """What the ledger says about one hop."""

    answer: str | None  # None: no evidence, or a tie between answers
    supporting: tuple[str, ...]  # entry ids
    contradicting: tuple[str, ...]

    @property
    def contested(self) -> bool:
        return self.answer is None and bool(self.contradicting)


class Ledger(BaseModel):
    entries: list[LedgerEntry] = Field(default_factory=list)

    def add(
        self,
        *,
        hop: int,
        sub_question: str,
        answer: str,
        source_id: str,
        chunk_id: str,
        quote: str,
        round: int = 0,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            id=f"E{len(self.entries) + 1}",
            hop=hop,
            sub_question=sub_question,
            claim=f"{sub_question} -> {answer}",
            answer=answer,
            source_id=source_id,
            chunk_id=chunk_id,
            quote=quote,
            round=round,
        )
        self.entries.append(entry)
        return entry

    def admit(
        self,
        *,
        hop: int,
        sub_question: str,
        chunk_id: str,
        source_id: str,
        text: str,
        quote: str,
        answer: str,
        given: Collection[str] = (),
        question: str = "",
        round: int = 0,
        min_score: float = QUOTE_MATCH,
    ) -> LedgerEntry | str:
        """Add a model's claim that `answer` answers the sub-question, if it holds: the quote
        is in the chunk's `text`, it states the answer, and the answer is none of `given` (the
        normalised earlier answers the sub-question was built from: repeating one is the model
        echoing its question) nor a name the sub-question or the whole `question` writes
        ("Empress Wang" for the father of Empress Wang's husband), unless one offers a choice;
        the passage names one of those answers or of the names the sub-question writes (a hop
        about Mountrail County is answered by a passage about it, not by one about Essex
        County), the answer is short, and its quote speaks of something asked. The new entry,
        or why the claim was rejected."""
        said = normalize_answer(answer)
        if len(answer.split()) > MAX_ANSWER_WORDS:
            return f"answer of {len(answer.split())} words is a passage, not an answer"
        if said in YES_NO and not answers_yes_no(sub_question):
            return f"{answer!r} does not answer a question that asks for a name or number"
        grounded = ground_quote(quote, text, min_score=min_score) or restated(quote, answer, text)
        stated = None if grounded is None else narrow_quote(grounded, answer)
        if grounded is None:
            return f"quote not in the passage: {quote!r}"
        if stated is None:
            return f"answer {answer!r} not in its quote"
        if said in given:
            return f"answer {answer!r} repeats an earlier hop's answer"
        if said in _echoes(sub_question, question):
            return f"answer {answer!r} is a name the question itself writes"
        about = names(sub_question)
        if (about or given) and not (
            names_any(text, about) or any(answer_in(g, text) for g in given)
        ):
            return f"the passage names none of {sorted({*about, *given})}, which it asks about"
        if not relevance(sub_question, answer, stated):
            return f"quote {stated!r} shares no word with the question"
        if self.has(hop, chunk_id, answer):
            return f"answer {answer!r} already recorded from this chunk"
        return self.add(
            hop=hop,
            sub_question=sub_question,
            answer=answer.strip(),
            source_id=source_id,
            chunk_id=chunk_id,
            quote=stated,
            round=round,
        )

    def get(self, entry_id: str) -> LedgerEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def for_hop(self, hop: int) -> list[LedgerEntry]:
        return [e for e in self.entries if e.hop == hop]

    def has(self, hop: int, chunk_id: str, answer: str) -> bool:
        """Is this claim recorded already (the same chunk read again for the same hop)?"""
        key = normalize_answer(answer)
        return any(
            e.chunk_id == chunk_id and normalize_answer(e.answer) == key for e in self.for_hop(hop)
        )

    def chunk_ids(self) -> set[str]:
        return {e.chunk_id for e in self.entries}

    def resolve(self, hop: int) -> Resolution:
        """Majority over normalised answers; sets each entry's verdict accordingly."""
        groups: dict[str, list[LedgerEntry]] = defaultdict(list)
        for e in self.for_hop(hop):
            groups[normalize_answer(e.answer)].append(e)
        if not groups:
            return Resolution(None, (), ())
        ranked = sorted(groups.values(), key=_strength, reverse=True)
        tie = len(ranked) > 1 and _strength(ranked[0]) == _strength(ranked[1])
        winners = [] if tie else ranked[0]
        for group in ranked:
            for e in group:
                e.verdict = Verdict.SUPPORTED if group is winners else Verdict.CONTRADICTED
        return Resolution(
            None if tie else winners[0].answer,
            tuple(e.id for e in winners),
            tuple(e.id for g in ranked if g is not winners for e in g),
        )


def _echoes(*questions: str) -> set[str]:
    """The names the questions write, normalised: no answer to them, unless one of them offers
    a choice between names ("Which band has more members, X or Y?")."""
    if any(offers_choice(q) for q in questions):
        return set()
    return {normalize_answer(n) for q in questions for n in names(q)}


def _strength(group: list[LedgerEntry]) -> tuple[int, int]:
    """How one answer's entries rank: by their number, then by their best quote's relevance."""
    return len(group), max(relevance(e.sub_question, e.answer, e.quote) for e in group)


def relevance(sub_question: str, answer: str, quote: str) -> int:
    """How many of the sub-question's content words (other than the answer's) the quote
    holds: whether the passage speaks of what was asked, or of something else."""
    return len((_content(sub_question) - _content(answer)) & _content(quote))


def _content(text: str) -> set[str]:
    """Content words cut to their first letters: "study" meets "studied", "directed" meets
    "director"."""
    return {w.lower()[:STEM] for w in words(text) if w.lower() not in STOPWORDS}


def ground_quote(quote: str, text: str, *, min_score: float = QUOTE_MATCH) -> str | None:
    """The sentences of `text` that hold `quote`; None if no run of sentences does.

    Small models drop a comma, change a letter's case or copy half a sentence; the ledger
    keeps the chunk's own whole sentences around the quote's best match, so a ledger quote is
    verbatim and reads as a statement.
    """
    span = find_span(quote, text, min_score) or find_elided(quote, text)
    if span is None:
        return None
    sentences = _sentences(text)
    start = max((s for s, _ in sentences if s <= span[0]), default=span[0])
    end = min((e for _, e in sentences if e >= span[1]), default=span[1])
    return text[start:end]


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of `text`, without surrounding whitespace."""
    spans = []
    start = 0
    for cut in [*(m.start() for m in _SENTENCE.finditer(text)), len(text)]:
        piece = text[start:cut]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = cut
    return spans


def restated(quote: str, answer: str, text: str) -> str | None:
    """The sentence of `text` a quote restates: one that states `answer` and holds at least
    RESTATED_SHARE of the quote's other content words, the one holding most (the longest of
    those), at most MAX_QUOTE_CHARS long (a cast list or an infobox line names everything);
    else None."""
    if normalize_answer(answer) in YES_NO:  # a judgement: any sentence "states" it
        return None
    wanted = _content(quote) - _content(answer)
    held = [
        (len(wanted & _content(sentence)), len(sentence), sentence)  # a statement, not a heading
        for sentence in (text[start:end] for start, end in _sentences(text))
        if len(sentence) <= MAX_QUOTE_CHARS and answer_in(answer, sentence)  # a list holds all
    ]
    shared, _, best = max(held, default=(0, 0, ""))
    return best if wanted and shared and shared >= RESTATED_SHARE * len(wanted) else None


def narrow_quote(quote: str, answer: str, *, max_chars: int = MAX_QUOTE_CHARS) -> str | None:
    """A quote that states `answer` and is short enough to check: the quote itself, or else
    its first sentence that states it; None when it does not state the answer.

    Small models often copy a whole passage as the quote, and any answer made of the
    passage's words would then pass `answer_in`.
    """
    if len(quote) <= max_chars:
        return quote if answer_in(answer, quote) else None
    return next((s for s in _SENTENCE.split(quote) if answer_in(answer, s)), None)


def answer_in(answer: str, quote: str) -> bool:
    """Does the quote state this answer? yes/no answers are judgements the quote cannot
    contain word for word; any other answer must appear in it, as a phrase or nearly so."""
    wanted = normalize_answer(answer)
    if not wanted:
        return False
    if wanted in YES_NO:
        return True
    said = normalize_answer(quote)
    if f" {wanted} " in f" {said} ":
        return True
    # near spellings only for longer answers: "uk" would match inside "ukraine"
    return len(wanted) >= _FUZZY_MIN_CHARS and fuzz.partial_ratio(wanted, said) >= QUOTE_MATCH
