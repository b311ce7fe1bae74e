"""Entity resolution: which stored entity a mention names, or a new one. Within its type, a
mention matches by exact name or alias (the store's index), then by fuzzy name (`names.py`),
then by embedding; a name seen twice in a document is resolved once.

Defaults, measured with benchmarks/bench_resolve.py on real names: the 485 Text2KGBench
(DBpedia) entities, typed by their ontologies, with 3,525 arXiv author names among the Person
distractors, queried with 993 generated variants (typos, accents, punctuation, initials, "The");
and within each of 400 SciERC abstracts, 323 names co-referent with another (real variants,
mostly abbreviations and paraphrases) among 4,721 entities. A false merge is an entity matched
to another one of its type whose name differs after normalisation:

    fuzzy >= 94   DBpedia variants 89.7%, false merges 0.66% | SciERC 9.3%, 0.66%
    fuzzy >= 95   DBpedia variants 87.9%, false merges 0.29% | SciERC 8.7%, 0.52%   <- default
    fuzzy >= 96   DBpedia variants 83.5%, false merges 0.21% | SciERC 7.7%, 0.33%
    then MiniLM embeddings, vetoed, on what fuzzy left:
    cosine >= 0.93   + 0.4% / + 0.29% false     | + 3.4% / + 0.73% false
    cosine >= 0.95   + 0.3% / + 0.05% false     | + 1.9% / + 0.35% false   <- default
    cosine >= 0.97   + 0.2% / + 0.05% false     | + 0.6% / + 0.12% false

Embeddings of bare names add little and are as likely to join two related entities
("English-to-Korean" / "Korean-to-English dictionary", 0.99) as two names of one; the step
stays, at 0.95, for reordered names ("object boundaries" / "boundaries of objects") at one
vector query per new name. `embedding_threshold` above 1.0 turns it off.

**No LLM, measured.** What the cheap steps miss is SciERC's kind of variant (about 89% of its
co-referent names): an abbreviation against its expansion ("SMT" / "statistical machine
translation") or a name against a paraphrase. An LLM could settle some, but only with a call
per new name and its candidates, which costs more than extracting the document did, and
`graph/` never calls models (DESIGN.md). A missed merge leaves two entities that a later pass
can join; a wrong one mixes the facts of two. So the rules lean to precision and nothing goes
to a model.

**Merges** (a mention attached to an existing entity by alias, fuzzy or embedding) are kept on
the entity (`Entity.merges`: name, names added, rule, score, source, time) and undone by
`unmerge`, which splits the name off again with the facts whose evidence named it so
(`Evidence.subject_mention` / `object_mention`).

**One `Resolver` per batch.** It caches names already resolved, keeps every entity name in
memory for fuzzy matching (the store has no fuzzy search) and the records of the entities used
most recently (so that a popular entity is not read back for every document that names it).
That assumes one process integrates into a store at a time; after another process wrote, or
after `unmerge`, call `forget()`.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from evergraph.embed.base import Embedder
from evergraph.graph.candidates import Mention
from evergraph.graph.ids import entity_id
from evergraph.graph.models import Entity, Merge
from evergraph.graph.names import NameIndex, normalise, vetoed
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.shared import name_key

FUZZY_THRESHOLD = 95.0
EMBEDDING_THRESHOLD = 0.95
KEPT_ENTITIES = 20_000  # records kept between documents (the popular ones recur)
MentionKey = tuple[str, str]  # (case-folded name, type)
Vector = npt.NDArray[np.float32]  # one row of `Embedder.embed`
_Hit = tuple[float, str, str]  # (cosine, entity id, entity name)


@lru_cache(maxsize=1 << 17)  # three per mention and document (prepare, resolve, assertions)
def mention_key(name: str, type: str) -> MentionKey:
    return name_key(name), type


@dataclass(frozen=True)
class ResolveSettings:
    fuzzy_threshold: float = FUZZY_THRESHOLD  # 0-100, see names.similarity
    embedding_threshold: float = EMBEDDING_THRESHOLD  # cosine; above 1.0 turns the step off
    candidates: int = 5  # embedding neighbours checked against the vetoes


@dataclass
class Resolution:
    """How one document's mentions resolved: the entity of every (name, type) it used, the
    touched entities as they are to be written, and the counts."""

    ids: dict[MentionKey, str] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    created: int = 0
    merged: int = 0

    def id_of(self, mention: Mention) -> str:
        return self.ids[mention_key(mention.name, mention.type)]


@dataclass(frozen=True)
class _Match:
    entity_id: str
    rule: str  # "exact", "alias", "fuzzy", "embedding" or "new"
    score: float


@dataclass
class _Created:
    """The entities a document creates, searchable before they are stored."""

    entities: dict[str, tuple[Entity, Vector]] = field(default_factory=dict)
    names: defaultdict[str, NameIndex] = field(default_factory=lambda: defaultdict(NameIndex))

    def add(self, entity: Entity, vector: Vector) -> None:
        self.entities[entity.id] = (entity, vector)
        for n in (entity.name, *entity.aliases):
            self.names[entity.type].add(n, entity.id)


class _Stack:
    """Entities and their vectors, the vectors kept as one matrix: the embedding step scores
    each new name against every entity of its type the batch created, and stacking those
    vectors again for every name grew with the square of the batch."""

    def __init__(self) -> None:
        self.entities: list[Entity] = []
        self._rows: Vector | None = None  # with room to grow: the rows past `entities`

    def __len__(self) -> int:
        return len(self.entities)

    def add(self, entity: Entity, vector: Vector) -> None:
        n = len(self.entities)
        if self._rows is None or n == len(self._rows):
            grown = np.zeros((max(2 * n, 16), *vector.shape), vector.dtype)
            if self._rows is not None:
                grown[:n] = self._rows
            self._rows = grown
        self._rows[n] = vector
        self.entities.append(entity)

    def scores(self, vector: Vector) -> Vector:
        """Each entity's vector times `vector`."""
        assert self._rows is not None, "scores of an empty stack"
        scores: Vector = np.einsum("nd,d->n", self._rows[: len(self.entities)], vector)
        return scores


def _unique(mentions: Sequence[Mention]) -> dict[MentionKey, Mention]:
    """One mention per (name, type), with the aliases of all of them."""
    unique: dict[MentionKey, Mention] = {}
    for m in mentions:
        key = mention_key(m.name, m.type)
        prior = unique.get(key)
        if prior is None:
            unique[key] = m
        elif any(a not in prior.aliases for a in m.aliases):
            aliases = list(dict.fromkeys([*prior.aliases, *m.aliases]))
            unique[key] = prior.model_copy(update={"aliases": aliases})
    return unique


class Resolver:
    """Resolves each document's mentions against the store; keep one for a batch."""

    def __init__(
        self, store: GraphStore, embedder: Embedder, settings: ResolveSettings | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or ResolveSettings()
        self._known: dict[MentionKey, str] = {}  # names resolved before
        self._index: defaultdict[str, NameIndex] | None = None  # type -> names, loaded once
        self._records: OrderedDict[str, Entity] = OrderedDict()  # least recently used first
        self._prepared: dict[MentionKey, tuple[Vector, list[_Hit]]] = {}  # this batch's names
        self._batch: dict[str, tuple[Entity, Vector]] = {}  # created since `prepare`
        self._batch_by_type: defaultdict[str, _Stack] = defaultdict(_Stack)
        self._stored: dict[MentionKey, Entity] = {}  # this batch's names found by id

    def forget(self) -> None:
        """Drop what is cached (after a rollback, another writer, or an unmerge)."""
        self._known.clear()
        self._index = None
        self._records.clear()
        self._prepared.clear()
        self._batch.clear()
        self._batch_by_type.clear()
        self._stored.clear()

    def prepare(self, documents: Sequence[Sequence[Mention]]) -> None:
        """Before a batch of documents: for the names that no known name matches exactly,
        read which have a stored entity of their id, embed them in one call, and search the
        stored entities for all of them in one matrix product (entities the batch creates are
        searched in memory). `resolve` then uses all three instead of a read, an embedding
        call and a search per document."""
        self._prepared.clear()
        self._batch.clear()
        self._batch_by_type.clear()
        self._stored.clear()
        names: dict[MentionKey, Mention] = {}
        known: set[MentionKey] = set()  # checked already: a batch repeats its names
        for mentions in documents:
            for m in mentions:
                key = mention_key(m.name, m.type)
                if key in names or key in known:
                    continue
                if self._exact(key) is None:
                    names[key] = m
                else:
                    known.add(key)
        self._search(names)

    def _guard(self, names: dict[MentionKey, Mention]) -> None:
        """Which of these names have an entity of their id in the store, in one read (once
        per batch: inside its transaction no one else writes)."""
        ids: dict[str, list[MentionKey]] = {}
        for key, m in names.items():
            ids.setdefault(entity_id(m.type, m.name), []).append(key)
        for e in self.store.get_entities(list(ids)) if ids else []:
            self._stored.update((key, e) for key in ids[e.id])

    def _search(self, names: dict[MentionKey, Mention]) -> None:
        """Guard, embed and search these names (see `prepare`)."""
        self._guard(names)
        if not names:
            return
        vectors = self.embedder.embed([m.name for m in names.values()])
        threshold = self.settings.embedding_threshold
        hits: list[list[_Hit]] = [[] for _ in names]
        if threshold <= 1.0:
            many = getattr(self.store, "search_entities_vectors", None)
            types = [m.type for m in names.values()]
            k = self.settings.candidates
            found = (
                many(vectors, types=types, k=k, min_score=threshold)
                if many is not None
                else [
                    self.store.search_entities_vector(v.tolist(), k=k, type=t)
                    for v, t in zip(vectors, types, strict=True)
                ]
            )
            hits = [[(s, e.id, e.name) for e, s in h if s >= threshold] for h in found]
        self._prepared.update(zip(names, zip(vectors, hits, strict=True), strict=True))

    def _entities(self, ids: set[str]) -> dict[str, Entity]:
        """Current records, from the cache or the store; the cache keeps the latest ones."""
        for eid in ids & self._batch.keys():  # not written yet: never evicted
            self._records[eid] = self._batch[eid][0]
        missing = sorted(i for i in ids if i not in self._records)
        if missing:  # mostly none: the cache holds what recent documents named
            self._records.update((e.id, e) for e in self.store.get_entities(missing))
        for eid in ids:
            self._records.move_to_end(eid)
        while len(self._records) > KEPT_ENTITIES:
            self._records.popitem(last=False)
        return {eid: self._records[eid] for eid in ids}

    def _names(self, type: str) -> NameIndex:
        if self._index is None:
            index: defaultdict[str, NameIndex] = defaultdict(NameIndex)
            cursor = ""
            while True:
                records, cursor = self.store.scan(Entity, after=cursor, limit=5000)
                for e in records:
                    for n in (e.name, *e.aliases):
                        index[e.type].add(n, e.id)
                        self._known.setdefault(mention_key(n, e.type), e.id)
                if not cursor:
                    break
            self._index = index
        return self._index[type]  # (not setdefault: that builds an index every call)

    def _exact(self, key: MentionKey) -> str | None:
        """Every stored name is known once the name index is loaded: no query per name."""
        if self._index is None:
            self._names(key[1])
        return self._known.get(key)

    def resolve(
        self, mentions: Sequence[Mention], *, source_id: str, seen: datetime, now: datetime
    ) -> Resolution:
        """Resolve a document's mentions. Every entity they name is returned updated: the
        names the mention added, a `Merge` when it was not an exact match, mentions + 1 (once
        per document), first/last seen widened to `seen`. Nothing is written."""
        unique = _unique(mentions)
        matches: dict[MentionKey, _Match] = {}
        for key, m in unique.items():
            if (match := self._cheap(key, m)) is not None:
                matches[key] = match
        pending = [(key, m) for key, m in unique.items() if key not in matches]
        if pending:  # a read guards against an entity of the same id written behind our back
            self._search({key: m for key, m in pending if key not in self._prepared})
            for key, _ in pending:
                if (e := self._stored.get(key)) is not None:
                    self._remember(e, [e.name, *e.aliases])
                    matches[key] = _Match(e.id, "exact", 100.0)
            pending = [(key, m) for key, m in pending if key not in matches]
        created = _Created()
        if pending:
            for key, m in pending:
                vector, hits = self._prepared[key]
                matches[key] = (
                    self._in_document(m, created)
                    or self._by_embedding(m, vector, hits)
                    or self._create(m, vector, seen, created)
                )
        return self._apply(unique, matches, created, source_id=source_id, seen=seen, now=now)

    def _cheap(self, key: MentionKey, m: Mention) -> _Match | None:
        found = self._exact(key)
        if found is not None:
            return _Match(found, "exact", 100.0)
        for alias in m.aliases:
            found = self._exact(mention_key(alias, m.type))
            if found is not None:
                return _Match(found, "alias", 100.0)
        best = self._names(m.type).best(m.name, self.settings.fuzzy_threshold)
        return None if best is None else _Match(best[0], "fuzzy", best[1])

    def _in_document(self, m: Mention, created: _Created) -> _Match | None:
        """A name like one an earlier mention of this document created an entity for."""
        names = created.names.get(m.type)
        best = None if names is None else names.best(m.name, self.settings.fuzzy_threshold)
        return None if best is None else _Match(best[0], "fuzzy", best[1])

    def _by_embedding(self, m: Mention, vector: Vector, hits: list[_Hit]) -> _Match | None:
        """The most similar entity of the type (stored, or created earlier in this batch)
        above the threshold whose name no veto rules out; `hits` are the stored ones."""
        threshold = self.settings.embedding_threshold
        if threshold > 1.0:
            return None
        scored = list(hits)
        created = self._batch_by_type.get(m.type)
        if created:  # one product for the entities of the type this batch created
            scored += [
                (float(score), e.id, e.name)
                for e, score in zip(created.entities, created.scores(vector), strict=True)
                if score >= threshold
            ]
        query = normalise(m.name)
        for score, eid, name in sorted(scored, reverse=True):
            if score < threshold:
                break
            if not vetoed(query, normalise(name)):
                return _Match(eid, "embedding", score)
        return None

    def _create(self, m: Mention, vector: Vector, seen: datetime, created: _Created) -> _Match:
        entity = Entity(
            id=entity_id(m.type, m.name),
            name=m.name,
            type=m.type,
            aliases=[a for a in dict.fromkeys(m.aliases) if name_key(a) != name_key(m.name)],
            embedding=vector.tolist(),
            first_seen=seen,
            last_seen=seen,
        )
        created.add(entity, vector)
        self._batch[entity.id] = (entity, vector)
        self._batch_by_type[entity.type].add(entity, vector)
        self._remember(entity, [entity.name, *entity.aliases])
        return _Match(entity.id, "new", 0.0)

    def _remember(self, entity: Entity, names: Sequence[str]) -> None:
        for n in names:
            key = mention_key(n, entity.type)
            if self._known.get(key) != entity.id:
                self._known[key] = entity.id
                self._names(entity.type).add(n, entity.id)

    def _apply(
        self,
        unique: dict[MentionKey, Mention],
        matches: dict[MentionKey, _Match],
        created: _Created,
        *,
        source_id: str,
        seen: datetime,
        now: datetime,
    ) -> Resolution:
        wanted = {match.entity_id for match in matches.values()} - created.entities.keys()
        for eid, (e, _) in created.entities.items():
            self._records[eid] = e
        entities = self._entities(wanted | created.entities.keys())
        out = Resolution(created=len(created.entities))
        for key, m in unique.items():
            match = matches[key]
            e = entities[match.entity_id]
            had = {name_key(n) for n in (e.name, *e.aliases)}
            added = [n for n in dict.fromkeys((m.name, *m.aliases)) if name_key(n) not in had]
            if added:
                e.aliases = [*e.aliases, *added]
            if match.rule in ("alias", "fuzzy", "embedding"):
                merge = Merge(
                    name=m.name,
                    added=added,
                    rule=match.rule,
                    score=match.score,
                    source_id=source_id,
                    at=now,
                )
                e.merges = [*e.merges, merge]
                out.merged += 1
            self._remember(e, [m.name, *added])
            out.ids[key] = e.id
            if e.id not in out.entities:
                out.entities[e.id] = e
                e.mentions += 1
                if e.first_seen is None or seen < e.first_seen:  # (set only when it moves:
                    e.first_seen = seen  # a model's setattr is not free, entities recur)
                if e.last_seen is None or seen > e.last_seen:
                    e.last_seen = seen
        return out
