"""Undoing an entity merge: the merged name becomes an entity of its own again, and takes with
it every piece of evidence whose text named the entity that way, with the facts it supports.

Resolution records each merge on the entity (`Entity.merges`) and each piece of evidence keeps
how its text named subject and object, so the split is exact: evidence that said "Obama"
moves to the split-off "Obama", evidence that said "Barack Obama" stays. A fact whose evidence
all moved is retired ("unmerged"), never deleted; its twin on the split entity carries its
times and status. Conflicts on functional predicates are not re-run: the split moves facts as
they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from evergraph.embed.base import Embedder
from evergraph.errors import UsageError
from evergraph.graph import ids
from evergraph.graph.confidence import CONFIDENCE_CAP, recounted
from evergraph.graph.models import Entity, Evidence, Fact, FactStatus, utcnow
from evergraph.graph.store.base import GraphStore
from evergraph.graph.store.shared import name_key


@dataclass(frozen=True)
class Unmerged:
    entity: Entity  # the entity the name was split off into
    facts_moved: int  # facts created or reinforced on it
    evidence_moved: int
    facts_retired: int  # left without evidence on the entity it was merged into


def _merge_index(entity: Entity, name: str) -> int:
    key = name_key(name)
    for i in reversed(range(len(entity.merges))):
        m = entity.merges[i]
        if m.undone_at is None and key in {name_key(n) for n in (m.name, *m.added)}:
            return i
    raise UsageError(
        f"{name!r} was not merged into {entity.name!r} (or that merge was undone already)",
        fix=f"unmerge one of: {', '.join(m.name for m in entity.merges if m.undone_at is None)}"
        if entity.merges
        else "this entity has no merges to undo",
    )


def _moves(fact: Fact, e: Evidence, old: str, new: str, names: set[str]) -> tuple[str, str | None]:
    """The (subject, object) this evidence belongs to once the names leave `old`."""
    subject, obj = fact.subject_id, fact.object_id
    if subject == old and name_key(e.subject_mention) in names:
        subject = new
    if obj == old and name_key(e.object_mention) in names:
        obj = new
    return subject, obj


def unmerge(
    store: GraphStore,
    embedder: Embedder,
    entity_id: str,
    name: str,
    *,
    now: datetime | None = None,
    cap: float = CONFIDENCE_CAP,
) -> Unmerged:
    """Undo the latest merge that attached `name` to the entity, in one transaction. Call
    `Resolver.forget()` afterwards on any resolver that is still in use."""
    now = now or utcnow()
    with store.transaction():
        entity = store.get_entity(entity_id)
        if entity is None:
            raise UsageError(f"no entity with id {entity_id!r}", fix="pass an existing entity")
        i = _merge_index(entity, name)
        merge = entity.merges[i]
        names = {name_key(n) for n in (merge.name, *merge.added)}
        split = store.get_entity(ids.entity_id(entity.type, merge.name)) or Entity(
            id=ids.entity_id(entity.type, merge.name),
            name=merge.name,
            type=entity.type,
            embedding=embedder.embed([merge.name])[0].tolist(),
        )
        own = {name_key(n) for n in (split.name, *split.aliases)}
        split.aliases += [n for n in merge.added if name_key(n) not in own]
        entity.aliases = [a for a in entity.aliases if name_key(a) not in names]
        entity.merges[i] = merge.model_copy(update={"undone_at": now})

        touched: dict[str, Fact] = {}
        removed: list[Evidence] = []
        added: list[Evidence] = []
        for fact in store.facts_about(entity.id, history=True):
            for e in store.evidence_for(fact.id):
                subject, obj = _moves(fact, e, entity.id, split.id, names)
                if (subject, obj) == (fact.subject_id, fact.object_id):
                    continue
                target = ids.fact_id(subject, fact.predicate, obj, fact.object_value)
                if target not in touched:
                    touched[target] = store.get_fact(target) or fact.model_copy(
                        update={"id": target, "subject_id": subject, "object_id": obj}
                    )
                touched.setdefault(fact.id, fact)
                removed.append(e)
                added.append(e.model_copy(update={"fact_id": target}))
        sources = {e.source_id for e in added}
        dates = [s.published_at for s in map(store.get_source, sorted(sources)) if s]
        dates += [split.first_seen, split.last_seen]
        known = [d for d in dates if d is not None]
        split.first_seen, split.last_seen = (min(known), max(known)) if known else (None, None)
        split.mentions += len(sources)
        entity.mentions = max(0, entity.mentions - len(sources))

        store.upsert_entities([entity, split])
        store.remove_evidence(removed)
        store.add_evidence(added)
        recount = [recounted(f, store.evidence_for(f.id), cap=cap) for f in touched.values()]
        store.upsert_facts(recount)
        orphans = [f for f in recount if f.support == 0 and f.retired_at is None]
        for f in orphans:
            store.retire_fact(
                f.id,
                at=now,
                reason=f"unmerged: its evidence moved to {split.name!r}",
                status=FactStatus.SUPERSEDED,
            )
    moved = {e.fact_id for e in added}
    return Unmerged(split, len(moved), len(added), len(orphans))
