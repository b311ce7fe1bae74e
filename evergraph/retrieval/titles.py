"""Document titles as entity names: which documents a span of text names.

Why: in an encyclopaedic corpus a document's title is the name of what it is about, and the
hop a multi-hop question never names is usually a document named in the passage of the hop
before ("the author of Killing Pablo": the Killing Pablo passage names Mark Bowden, whose own
article states where he was born). Linking title mentions is HippoRAG's entity graph with the
titles as entities and the mentions as edges, built without a model: it works on any store
whose documents have titles, before (or without) an LLM-built graph.

Names are matched word for word and case-sensitively (names are capitalised where plain
words are not), by their letters and digits only ("J. M. Barrie" matches "J M Barrie"). A
title also answers to its name without Wikipedia's disambiguation: "Capote (film)" to
"Capote", "Van Hook Township, Mountrail County, North Dakota" to "Van Hook Township".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from evergraph.graph.models import Source
from evergraph.graph.store.base import GraphStore
from evergraph.retrieval.text import STOPWORDS, words

MAX_WORDS = 8  # longer titles are not looked for (a sentence, not a name)
PAGE = 2000  # sources read per scan page when the index is built
_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")


def name_variants(title: str) -> set[tuple[str, ...]]:
    """The word tuples a title answers to: itself, without a trailing "(...)", and the part
    before its first comma; none that is only function words or longer than MAX_WORDS."""
    bare = _QUALIFIER.sub("", title)
    forms = {title, bare, bare.split(",", 1)[0]}
    variants = set()
    for form in forms:
        key = tuple(words(form))
        if 0 < len(key) <= MAX_WORDS and any(w.lower() not in STOPWORDS for w in key):
            variants.add(key)
    return variants


class TitleIndex:
    """Source titles of one store, held in memory (built by one scan of its sources)."""

    def __init__(
        self, names: dict[tuple[str, ...], set[str]], whole: dict[tuple[str, ...], set[str]]
    ) -> None:
        self._names = names
        self._whole = whole  # sources by their whole title's words, qualifier and all
        self._longest = max((len(k) for k in names), default=0)

    @classmethod
    def build(cls, store: GraphStore) -> TitleIndex:
        return cls.of(_all_sources(store))

    @classmethod
    def of(cls, sources: Iterable[Source]) -> TitleIndex:
        names: dict[tuple[str, ...], set[str]] = {}
        whole: dict[tuple[str, ...], set[str]] = {}
        for source in sources:
            for key in name_variants(source.title):
                names.setdefault(key, set()).add(source.id)
            whole.setdefault(tuple(words(source.title)), set()).add(source.id)
        return cls(names, whole)

    def __len__(self) -> int:
        return len(self._names)

    def titled(self, name: str) -> set[str]:
        """The sources whose whole title is `name`: of the documents a name answers to, the
        one about it ("Third Eye Blind", not "Third Eye Blind (album)")."""
        return self._whole.get(tuple(words(name)), set())

    def mentions(self, text: str) -> list[tuple[str, set[str]]]:
        """The titles `text` names, in order of appearance, each with the ids of the sources
        so titled. The longest name wins where names overlap ("Mark Bowden", not "Mark")."""
        tokens = words(text)
        found: list[tuple[str, set[str]]] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + n])
                if key in self._names:
                    found.append((" ".join(key), self._names[key]))
                    i += n
                    break
            else:
                i += 1
        return found


def _all_sources(store: GraphStore) -> Iterator[Source]:
    cursor = ""
    while True:
        page, cursor = store.scan(Source, after=cursor, limit=PAGE)
        yield from page
        if not cursor:
            return
