"""The paper-level edges a concept map needs on top of what the extractor found.

A paper's concepts are the entities the extractor kept (enough samples named them and the text
contains them) plus the ends of its accepted facts. For each paper this adds, before the
constructor integrates it (same transaction, same entity resolution):

- `appears_in`: concept -> the paper's id as a literal, one fact per (concept, paper), valid
  from the paper's date. It is what trends count (`occurrences`); literal objects keep papers out
  of the concept graph's centrality and communities (`graph.views`).
- `co_occurs_with`: between every two concepts of the paper (ordered by name, so the same pair
  is always the same fact); a pair seen again in a later paper gains support, and its
  `valid_from` is the first paper that had it. No sentence states it: its evidence has no quote.

Their confidence is the extractor's cap: the concept passed the same vote and grounding as a
fact's ends, and a paper naming a concept is not a claim one sample could invent alone.
"""

from __future__ import annotations

from itertools import combinations

from evergraph.graph.candidates import CandidateFact, DocumentExtraction, Mention
from evergraph.graph.resolve import mention_key

APPEARS_IN = "appears_in"
CO_OCCURS = "co_occurs_with"
PAPER_PREDICATES = frozenset({APPEARS_IN, CO_OCCURS})


def concepts(extraction: DocumentExtraction) -> list[Mention]:
    """The paper's distinct concepts (by normalised name and type), in name order."""
    found: dict[tuple[str, str], Mention] = {}
    ends = [m for f in extraction.facts for m in (f.subject, f.object) if m is not None]
    for m in (*extraction.mentions, *ends):
        found.setdefault(mention_key(m.name, m.type), m)
    return [found[k] for k in sorted(found)]


def with_paper_edges(
    extraction: DocumentExtraction, *, paper: str, chunk_id: str, confidence: float
) -> DocumentExtraction:
    """The extraction plus its paper's `appears_in` and `co_occurs_with` candidate facts."""
    found = concepts(extraction)

    def fact(subject: Mention, predicate: str, obj: Mention | None, quote: str) -> CandidateFact:
        return CandidateFact(
            subject=subject,
            predicate=predicate,
            object=obj,
            object_value=paper if obj is None else None,
            quote=quote,
            chunk_id=chunk_id,
            agreement=confidence,
            confidence=confidence,
        )

    added = [fact(m, APPEARS_IN, None, m.name) for m in found]
    added += [fact(a, CO_OCCURS, b, "") for a, b in combinations(found, 2)]
    return extraction.model_copy(update={"facts": [*extraction.facts, *added]})
