"""Text helpers shared by retrieval, the ledger, extraction and evaluation: answer
normalisation, query terms, n-grams, and finding a quoted passage in a text.

`normalize_answer` is the SQuAD/HotpotQA normalisation, so that the ledger groups answers the
same way the official metrics compare them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator

from rapidfuzz import fuzz

# Function words only: they match most chunks, so a full-text OR over them makes SQLite FTS5
# score nearly the whole corpus (slow) while BM25 gives them almost no weight anyway.
_FUNCTION_WORDS = """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom whose why will with would you your yours yourself
    yourselves also many much"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())

# A question opening with one of these asks yes or no ("Are both ...?", "Did ...?") unless it
# offers a choice ("Is X or Y older?"); any other asks for a name, date or number, which "yes"
# does not answer.
_POLAR_OPENERS = frozenset(
    {"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "has", "have"}
    | {"had", "will", "would", "shall", "should", "may", "might", "must"}
)
YES_NO = frozenset({"yes", "no"})

_WORD = re.compile(r"[^\W_]+")
_CLAUSE = re.compile(r"[,;:?!()\[\]\"“”\n]")  # where a name ends, whatever the case around it
# Lower-case words inside names: "Alice de Lusignan", "Ludwig van Beethoven" ("of" is not one:
# "the 7 Habits of Highly Effective Teens" is also named by "Highly Effective Teens")
_PARTICLES = frozenset({"de", "del", "della", "der", "den", "di", "da", "du", "van", "von"})
MIN_ELIDED_WORDS = 4  # an elided quote needs this many words, all in the text, in order
MAX_ELISION = 2.0  # and its span in the text at most this many times its own length
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse spaces (official SQuAD rules)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def answers_yes_no(question: str) -> bool:
    """Is this a yes/no question?"""
    said = [w.lower() for w in words(question)]
    return bool(said) and said[0] in _POLAR_OPENERS and not offers_choice(question)


def offers_choice(question: str) -> bool:
    """Does the question offer its answers ("Is X or Y older?", "Which came first, X or Y?")?"""
    return "or" in (w.lower() for w in words(question))


def compares(question: str) -> bool:
    """Does the question compare things it names ("Is X or Y older?", "Are X and Y both
    operas?", "... from the same country?")? It has no hidden second hop to look for."""
    alike = {"both", "same"} & {w.lower() for w in words(question)}
    return offers_choice(question) or (answers_yes_no(question) and bool(alike))


def names(text: str) -> list[str]:
    """The capitalised runs of `text` ("Anna Benson", "Miracle", "34th Street"), function
    words ("Who", "The") left out: what a question is about, as its passages would write it.
    A run goes on through a name's particles ("Alice de Lusignan", not "Alice" and "Lusignan")
    and stops at punctuation and line breaks ("Edward Baring, 1st Baron"; "Who is X? X wrote";
    a title line "George VI" above "George VI was ...")."""
    runs: list[list[str]] = []
    for piece in _CLAUSE.split(text):
        run: list[str] = []
        for w in [*words(piece), ""]:
            capital = w[:1].isupper() or w[:1].isdigit()
            if (capital and w.lower() not in STOPWORDS) or (run and w in _PARTICLES):
                run.append(w)
            else:
                while run and run[-1] in _PARTICLES:
                    run.pop()
                if run:
                    runs.append(run)
                run = []
    return [" ".join(run) for run in runs]


def names_any(text: str, wanted: Iterable[str]) -> bool:
    """Does `text` write one of these names, word for word and in their case?"""
    said = f" {' '.join(words(text))} "
    return any(f" {name} " in said for name in wanted)


def words(text: str) -> list[str]:
    """Runs of letters and digits, as the stores' full-text indexes split them."""
    return _WORD.findall(text)


def content_query(text: str) -> str:
    """`text` without function words: the part of a question worth a full-text search.

    Falls back to the text itself when nothing else is left ("Who was he?").
    """
    kept = [w for w in words(text) if w.lower() not in STOPWORDS]
    return " ".join(kept) if kept else text


def ngrams(text: str, max_n: int = 4) -> Iterator[str]:
    """Word n-grams of `text` (longest first) that neither start nor end with a function word:
    the spans that can name an entity ("University of Oxford", not "of Oxford")."""
    tokens = words(text)
    seen: set[str] = set()
    for n in range(min(max_n, len(tokens)), 0, -1):
        for i in range(len(tokens) - n + 1):
            span = tokens[i : i + n]
            if span[0].lower() in STOPWORDS or span[-1].lower() in STOPWORDS:
                continue
            gram = " ".join(span)
            if gram.lower() not in seen:
                seen.add(gram.lower())
                yield gram


def find_span(needle: str, text: str, min_score: float | None) -> tuple[int, int] | None:
    """(start, end) of `needle` in `text`: exactly (case and spacing aside), else the best
    fuzzy alignment scoring at least `min_score` (rapidfuzz partial ratio, 0-100; None: exact
    only).

    Models copying a quote drop a comma or change a letter's case; both the extractor and the
    evidence ledger accept that, and widen the span to their own unit (words, sentences).
    """
    tokens = needle.split()
    if not tokens:
        return None
    exact = re.search(r"\s+".join(map(re.escape, tokens)), text, re.IGNORECASE)
    if exact:
        return exact.start(), exact.end()
    lowered = text.lower()
    if min_score is None or len(lowered) != len(text):  # offsets would not map back
        return None
    wanted = " ".join(tokens).lower()
    if len(wanted) > len(text):  # partial ratio would find the text inside the needle instead
        return None
    hit = fuzz.partial_ratio_alignment(wanted, lowered, score_cutoff=min_score)
    return None if hit is None else (hit.dest_start, hit.dest_end)


def find_elided(needle: str, text: str) -> tuple[int, int] | None:
    """(start, end) of the shortest span of `text` holding all of `needle`'s words in order,
    when it is short enough: models quote "X ... died in Y" by joining the clauses that state
    a fact, and drop a parenthesis ("Helen Pitts Douglass was ..." for "Helen Pitts Douglass
    (1838-1903) was ...")."""
    wanted = [w.casefold() for w in words(needle)]
    if len(wanted) < MIN_ELIDED_WORDS:
        return None
    spans = [(m.group(0).casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
    best: tuple[int, int] | None = None
    for first, (word, start, _) in enumerate(spans):
        if word != wanted[0]:
            continue
        i, j = 1, first + 1
        while i < len(wanted) and j < len(spans):
            i += spans[j][0] == wanted[i]
            j += 1
        fits = i == len(wanted) and (j - first) <= MAX_ELISION * len(wanted)
        if fits and (best is None or spans[j - 1][2] - start < best[1] - best[0]):
            best = (start, spans[j - 1][2])
    return best
