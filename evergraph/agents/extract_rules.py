"""The extractor's deterministic half: what the model may propose, and how it is judged.

The model fills `ChunkOut` n times for one chunk; `judge` turns those samples into
`CandidateFact`s with no model involved, so every rule here is unit-testable:

1. **Normalise.** Names and quotes compare by case-folded, whitespace-collapsed text;
   predicates by their letters only (`orbital period`, `orbitalPeriod`, `orbital_period` are one
   predicate), mapped to the schema's spelling, or to snake_case without a schema.
2. **Vote.** A triple is (subject, predicate, object) after normalisation; each sample votes for
   it at most once. Types are decided by majority over the voting samples' entity lists.
3. **Check, in this order, one reason per rejected triple:** predicate and types inside the
   schema, domain/range, subject and object mentioned in the chunk, a supporting quote found in
   the chunk, then agreement. Grounding comes before agreement because five samples can agree
   on the same invention; rejection counts then say *why* output was wrong, not only that it
   was rare.
4. **Grounding.** A name or quote is found when its normalised text occurs in the normalised
   chunk; failing that, a rapidfuzz `partial_ratio` of at least `quote_match` (0-100) counts,
   for needles of `MIN_FUZZY_CHARS` or more (small models drop a hyphen or change a plural;
   short names would match anything fuzzily). The stored quote and names are the chunk's own
   words, not the model's rendering of them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from math import ceil
from typing import Any

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from evergraph.graph.candidates import CandidateFact, Mention
from evergraph.graph.names import plain_key
from evergraph.graph.schema import GraphSchema, RelationType
from evergraph.llm.enums import with_enums
from evergraph.llm.partial import ItemLists
from evergraph.retrieval.text import find_elided, find_span

MAX_ENTITIES = 12
MAX_TAGS = 24  # entity types alone: the kg4s abstracts carry 24 hand-tagged concepts on average
MAX_RELATIONS = 8
MIN_FUZZY_CHARS = 12
LITERAL = "literal"
ANY_TYPE = "Thing"


# --- what the model fills in: kept small so a 0.5B model completes it within max_tokens -------


class EntityOut(BaseModel):
    name: str = Field(max_length=80, description="as written in the text")
    type: str = Field(max_length=40)
    aliases: list[str] = Field(
        default_factory=list, max_length=3, description="other names the text uses for it"
    )


class RelationOut(BaseModel):
    subject: str = Field(max_length=80, description="an entity name from the text")
    predicate: str = Field(max_length=40)
    object: str = Field(max_length=80, description="an entity name, or a value such as 3 km")
    quote: str = Field(max_length=200, description="the words of the text that state it, exactly")


class ChunkOut(ItemLists):
    """Relations first: they are what a sample cut off at max_tokens should have reached."""

    relations: list[RelationOut] = Field(max_length=MAX_RELATIONS)
    entities: list[EntityOut] = Field(max_length=MAX_ENTITIES)


class EntitiesOut(ChunkOut):
    """For schemas of entity types alone (concept tagging): the entities only. Asked for
    relations too, the 0.5B spent its max_tokens on relations nobody wanted and named one
    concept per abstract (20 kg4s abstracts: 21 concepts against 486 tagged). Relations a
    server sends anyway are judged as usual."""

    relations: SkipJsonSchema[list[RelationOut]] = Field(default_factory=list)
    entities: list[EntityOut] = Field(max_length=MAX_TAGS)


def output_model(schema: GraphSchema) -> type[ChunkOut]:
    """`ChunkOut` whose JSON schema lists the user schema's predicates and entity types as enums.

    Servers compile the response schema into a grammar (vLLM guided decoding, llama.cpp), so a
    small model cannot spell a predicate or type the schema lacks; `judge` still checks every
    value, as other servers may ignore the enum."""
    if not (schema.relations or schema.entity_types):
        return ChunkOut

    entity: Any = EntityOut  # a class built at run time: Any to mypy
    if schema.entity_types:
        entity = with_enums(EntityOut, "SchemaEntityOut", type=sorted(schema.entity_types))
    if not schema.relations:
        return create_model(
            "SchemaEntitiesOut",
            __base__=EntitiesOut,
            entities=(list[entity], Field(max_length=MAX_TAGS)),
        )
    names = [r.name for r in schema.relations]
    relation: Any = with_enums(RelationOut, "SchemaRelationOut", predicate=names)
    return create_model(
        "SchemaChunkOut",
        __base__=ChunkOut,
        relations=(list[relation], Field(max_length=MAX_RELATIONS)),
        entities=(list[entity], Field(max_length=MAX_ENTITIES)),
    )


# --- rules -------------------------------------------------------------------------------------


class Reason(StrEnum):
    """Why a distinct triple was rejected (the keys of `DocumentExtraction.rejected`)."""

    PREDICATE = "predicate_not_in_schema"
    TYPE = "type_not_in_schema"
    DOMAIN = "domain_violation"
    RANGE = "range_violation"
    SUBJECT = "subject_not_in_text"
    OBJECT = "object_not_in_text"
    QUOTE = "quote_not_in_text"
    AGREEMENT = "low_agreement"
    TYPE_NAME = "names_a_type"  # a tagged "concept" that is a type's name: "model", "fields"


@dataclass(frozen=True)
class Rules:
    """MedKGent-style acceptance rules; see `evergraph.agents.extract` for the defaults' reasons."""

    min_agreement: float = 0.4
    confidence_cap: float = 0.95
    quote_match: float = 90.0

    def min_votes(self, requested: int) -> int:
        """Votes needed out of `requested` samples (at least one)."""
        return max(1, ceil(self.min_agreement * requested - 1e-9))


@dataclass
class Judged:
    """What one chunk's samples yielded: accepted facts, entity mentions, rejection counts."""

    facts: list[CandidateFact] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


def name_key(name: str) -> str:
    return norm(name).strip(" .,;:'\"")


def _letters(predicate: str) -> str:
    return re.sub(r"[\W_]+", "", predicate.casefold())


def canonical_predicate(predicate: str, schema: GraphSchema) -> str | None:
    """The schema's spelling of `predicate`, snake_case without a schema, None if unknown."""
    if schema.relations:
        key = _letters(predicate)
        return next((r.name for r in schema.relations if _letters(r.name) == key), None)
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", predicate.strip())
    return re.sub(r"[\W_]+", "_", spaced.casefold()).strip("_") or None


def canonical_type(type_: str, schema: GraphSchema) -> str | None:
    """The schema's spelling of an entity type, the type itself without a schema, None if
    unknown."""
    cleaned = " ".join(type_.split()) or ANY_TYPE
    if not schema.entity_types:
        return cleaned
    key = _letters(cleaned)
    return next((t for t in schema.entity_types if _letters(t) == key), None)


def locate(needle: str, text: str, threshold: float) -> str | None:
    """The chunk's own words for `needle`, or None when it is not there (module docstring)."""
    fuzzy = len(needle) >= MIN_FUZZY_CHARS  # a short fuzzy match is too often another word
    span = find_span(needle, text, threshold if fuzzy else None)
    if span is not None:
        return _whole_words(text, *span)
    elided = find_elided(needle, text) if fuzzy else None
    return text[elided[0] : elided[1]] if elided else None


def _whole_words(text: str, start: int, end: int) -> str:
    """The span widened to whole words: an alignment may start or stop inside one."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return text[start:end].strip()


@dataclass
class _Vote:
    subject: str
    object: str
    quote: str
    subject_type: str | None
    object_type: str | None


def _collect(
    samples: Sequence[ChunkOut], schema: GraphSchema
) -> tuple[dict[tuple[str, str, str], list[_Vote]], int]:
    """Group each sample's relations by normalised triple, one vote per sample per triple.

    Also returns how many distinct triples named a predicate outside the schema.
    """
    votes: dict[tuple[str, str, str], list[_Vote]] = defaultdict(list)
    unknown: set[tuple[str, str, str]] = set()
    for sample in samples:
        types: dict[str, str] = {}
        for e in sample.entities:
            for n in (e.name, *e.aliases):
                types.setdefault(name_key(n), e.type)
        voted: set[tuple[str, str, str]] = set()
        for r in sample.relations:
            predicate = canonical_predicate(r.predicate, schema)
            s, o = name_key(r.subject), name_key(r.object)
            if not (s and o):
                continue
            if predicate is None:
                unknown.add((s, _letters(r.predicate), o))
                continue
            key = (s, predicate, o)
            if key not in voted:
                voted.add(key)
                votes[key].append(_Vote(r.subject, r.object, r.quote, types.get(s), types.get(o)))
    return votes, len(unknown)


def _majority(declared: Iterable[str | None], default: str, schema: GraphSchema) -> str:
    """The most declared type, known types in the schema's spelling (unknown ones kept, to be
    rejected); `default` when no sample declared one."""
    counts = Counter(canonical_type(t, schema) or t for t in declared if t)
    return counts.most_common(1)[0][0] if counts else default


def _types(
    votes: list[_Vote], rel: RelationType | None, schema: GraphSchema
) -> tuple[str | None, str | None, bool]:
    """Subject type, object type (None for a literal or a type outside the schema), literal?"""
    domain = rel.domain if rel else None
    range_ = rel.range if rel else None
    subject_type = canonical_type(
        _majority((v.subject_type for v in votes), domain or ANY_TYPE, schema), schema
    )
    declared_object = any(v.object_type for v in votes)
    literal = range_ == LITERAL or (range_ is None and not declared_object)
    if literal:
        return subject_type, None, True
    object_type = canonical_type(
        _majority((v.object_type for v in votes), range_ or ANY_TYPE, schema), schema
    )
    return subject_type, object_type, False


def judge(
    samples: Sequence[ChunkOut],
    requested: int,
    *,
    text: str,
    chunk_id: str,
    schema: GraphSchema,
    rules: Rules,
) -> Judged:
    """Apply the module's rules to the valid samples of one chunk (`requested` were asked)."""
    votes, unknown = _collect(samples, schema)
    judged = Judged()
    if unknown:
        judged.rejected[Reason.PREDICATE] = unknown
    need = rules.min_votes(requested)
    for (_, predicate, _), vs in votes.items():
        rel = schema.relation(predicate)
        subject_type, object_type, literal = _types(vs, rel, schema)
        found = _check(vs, rel, subject_type, object_type, literal, text, rules, need)
        if isinstance(found, Reason):
            judged.rejected[found] += 1
            continue
        subject, obj, quote = found
        agreement = min(1.0, len(vs) / requested)
        judged.facts.append(
            CandidateFact(
                subject=Mention(name=subject, type=subject_type or ANY_TYPE),
                predicate=predicate,
                object=None if literal else Mention(name=obj, type=object_type or ANY_TYPE),
                object_value=obj if literal else None,
                quote=quote,
                chunk_id=chunk_id,
                agreement=agreement,
                confidence=min(agreement, rules.confidence_cap),
            )
        )
    judged.mentions = _mentions(samples, need, text, schema, rules, judged)
    return judged


def _check(
    votes: list[_Vote],
    rel: RelationType | None,
    subject_type: str | None,
    object_type: str | None,
    literal: bool,
    text: str,
    rules: Rules,
    need: int,
) -> Reason | tuple[str, str, str]:
    """The first rule the triple breaks, or its (subject, object, quote) in the chunk's words."""
    if subject_type is None or (not literal and object_type is None):
        return Reason.TYPE
    if rel is not None and rel.domain is not None and subject_type != rel.domain:
        return Reason.DOMAIN
    if rel is not None and rel.range not in (None, LITERAL) and object_type != rel.range:
        return Reason.RANGE
    subject = _first_found((v.subject for v in votes), text, rules)
    if subject is None:
        return Reason.SUBJECT
    obj = _first_found((v.object for v in votes), text, rules)
    if obj is None:
        return Reason.OBJECT
    quote = _first_found((v.quote for v in votes), text, rules)
    if quote is None:
        return Reason.QUOTE
    if len(votes) < need:
        return Reason.AGREEMENT
    return subject, obj, quote


def _first_found(needles: Iterable[str], text: str, rules: Rules) -> str | None:
    """The chunk's words for the first of the voters' spellings that the chunk contains."""
    return next((f for n in needles if (f := locate(n, text, rules.quote_match))), None)


def _mentions(
    samples: Sequence[ChunkOut],
    need: int,
    text: str,
    schema: GraphSchema,
    rules: Rules,
    judged: Judged,
) -> list[Mention]:
    """Entities enough samples named and the chunk mentions, plus every accepted fact's ends.
    A schema's type names are not entities (the 0.5B tagged "model" and "field" in astro-ph
    abstracts, whose schema has those types)."""
    by_key: dict[str, list[EntityOut]] = defaultdict(list)
    for sample in samples:
        for key, e in {name_key(e.name): e for e in sample.entities}.items():
            by_key[key].append(e)
    type_names = {plain_key(t) for t in schema.entity_types}
    found: dict[tuple[str, str], Mention] = {}
    for es in by_key.values():
        type_ = canonical_type(_majority((e.type for e in es), ANY_TYPE, schema), schema)
        name = _first_found((e.name for e in es), text, rules)
        if len(es) < need or type_ is None or name is None:
            continue
        if plain_key(name) in type_names:
            judged.rejected[Reason.TYPE_NAME] += 1
            continue
        aliases = {a for e in es for n in e.aliases if (a := locate(n, text, rules.quote_match))}
        aliases.discard(name)
        found[(name_key(name), type_)] = Mention(name=name, type=type_, aliases=sorted(aliases))
    for f in judged.facts:
        for m in (f.subject, f.object):
            if m is not None:
                found.setdefault((name_key(m.name), m.type), m)
    return list(found.values())
