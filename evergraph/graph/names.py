"""Comparing entity names: normalisation, a fuzzy score, and the vetoes that forbid a merge.

Measured on real names (benchmarks/bench_resolve.py; the figures are in graph/resolve.py): the
near misses a plain string score lets through are names that differ in a number ("Type 1" /
"Type 2", "Bremen II"), in an initial ("C. Dickinson" / "M. Dickinson"), in a negating prefix
("supervised" / "unsupervised", "symmetric" / "asymmetric") or in one replaced letter of a
short word ("Hahn" / "Zahn", "APT" / "MPT"; transposed letters, "Indai" / "India", are a
typo). Each of those is a veto here. Two differences are no difference at all: a plural
("CNN" / "CNNs") and initials on one side only ("Sarah Shandera" / "Sarah E. Shandera"). What
remains is scored with Jaro-Winkler, which rewards a shared beginning (names vary at the end:
suffixes, typos).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

_NON_WORD = re.compile(r"[\W_]+")
_ROMAN = frozenset({"ii", "iii", "iv", "vi", "vii", "viii", "ix"})  # not i, v, x: initials
_NEGATING = ("un", "non", "a", "an", "in", "im", "ir", "il", "dis", "anti")
SHORT_WORD = 6  # a one-letter change in a shorter word is another word, not a typo
PREFILTER_MARGIN = 10.0  # plain Jaro-Winkler may score a pair this much below `similarity`


@lru_cache(maxsize=1 << 16)  # names are compared again and again (pure: cached)
def normalise(name: str) -> str:
    """Accents off, case folded, punctuation to single spaces: "São-Paulo" -> "sao paulo"."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(_NON_WORD.sub(" ", plain).split())


def _numbers(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t.isdigit() or t in _ROMAN] + re.findall(r"\d+", " ".join(tokens))


@lru_cache(maxsize=1 << 16)
def _parts(name: str) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """A normalised name's words, numbers and initials: each fuzzy search vetoes its query
    against ten candidates, and names recur, so each is split once."""
    tokens = name.split()
    initials = frozenset(t for t in tokens if len(t) == 1 and t.isalpha())
    return tuple(tokens), tuple(_numbers(tokens)), initials


def _singular(token: str) -> str:
    if len(token) > 3 and token.endswith("es") and token[-3] in "sxz":
        return token[:-2]
    return (
        token[:-1] if len(token) > 2 and token.endswith("s") and not token.endswith("ss") else token
    )


def plain_key(name: str) -> str:
    """A name normalised and each word singular: "Black Holes" and "black hole" share it."""
    return " ".join(_singular(t) for t in normalise(name).split())


def _canonical(a: str, b: str) -> tuple[str, str]:
    """Both names singular, without the initials only one of them has."""
    ta, tb = [_singular(t) for t in a.split()], [_singular(t) for t in b.split()]
    extra_a = {t for t in ta if len(t) == 1} - set(tb)
    extra_b = {t for t in tb if len(t) == 1} - set(ta)
    keep_a = [t for t in ta if t not in extra_a] if not extra_b else ta
    keep_b = [t for t in tb if t not in extra_b] if not extra_a else tb
    return " ".join(keep_a), " ".join(keep_b)


def _negated(a: str, b: str) -> bool:
    """ "unsupervised" / "supervised"; a short base is more likely a typo ("rmy" / "army")."""
    return any(
        (a == p + b and len(b) >= SHORT_WORD - 1) or (b == p + a and len(a) >= SHORT_WORD - 1)
        for p in _NEGATING
    )


def vetoed(a: str, b: str) -> bool:
    """True when two normalised names must not be merged however similar they look."""
    (ta, na, ia), (tb, nb, ib) = _parts(a), _parts(b)
    if na != nb:
        return True
    if ia and ib and not (ia <= ib or ib <= ia):
        return True
    only_a = [t for t in ta if t not in tb]
    only_b = [t for t in tb if t not in ta]
    if any(_negated(x, y) for x in only_a for y in only_b):
        return True
    if len(ta) == len(tb) and len(only_a) == len(only_b) == 1:
        x, y = only_a[0], only_b[0]  # a letter replaced, not dropped, added or transposed
        return len(x) == len(y) < SHORT_WORD and sorted(x) != sorted(y)
    return False


def similarity(a: str, b: str) -> float:
    """0-100 for two normalised names: 0 when `vetoed`; 100 when they are the same but for
    spaces ("usa" / "u s a"), plurals and one-sided initials; else their Jaro-Winkler
    similarity (on the names as they are: dropping initials before a fuzzy score made
    "S. A. Eales" look like "S. Peale")."""
    if vetoed(a, b):
        return 0.0
    for x, y in ((a, b), _canonical(a, b)):
        if x.replace(" ", "") == y.replace(" ", ""):
            return 100.0
    return 100.0 * JaroWinkler.normalized_similarity(a, b)


class NameIndex:
    """The normalised names (and aliases) of one entity type, for the best fuzzy match."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._ids: list[str] = []
        self._compact: dict[str, str] = {}  # name without spaces -> entity id

    def __len__(self) -> int:
        return len(self._names)

    def add(self, name: str, entity_id: str) -> None:
        key = normalise(name)
        if key and key.replace(" ", "") not in self._compact:
            self._names.append(key)
            self._ids.append(entity_id)
            self._compact[key.replace(" ", "")] = entity_id

    def best(
        self, name: str, threshold: float, *, candidates: int = 10, exclude: str | None = None
    ) -> tuple[str, float] | None:
        """(entity id, score) of the most similar name scoring at least `threshold` that no
        veto rules out, among the `candidates` best by plain Jaro-Winkler; the entity
        `exclude` is passed over (to find an entity's nearest other)."""
        query = normalise(name)
        if not query:
            return None
        same = self._compact.get(query.replace(" ", ""))
        if same is not None and same != exclude:
            return same, 100.0
        found = process.extract(
            query,
            self._names,
            scorer=JaroWinkler.normalized_similarity,
            limit=candidates + 1,
            score_cutoff=max(threshold - PREFILTER_MARGIN, 0.0) / 100.0,
        )
        scored = [(similarity(query, c), i) for c, _, i in found if self._ids[i] != exclude]
        score, i = max(scored[:candidates], default=(0.0, -1))
        return (self._ids[i], score) if score >= threshold else None
