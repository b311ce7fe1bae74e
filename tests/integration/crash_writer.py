"""Child process for test_crash_safety.py: writes tagged batches until it is killed.

    python crash_writer.py STORE FIRST_BATCH

Each batch is one transaction: a source with CHUNKS chunks, ENTITIES entities and FACTS
facts, all tagged "batch-N". It prints "writing N" before and "committed N" after the commit.
"""

from __future__ import annotations

import sys

from evergraph.graph.models import Chunk, Entity, Fact, Source
from evergraph.graph.store.sqlite import SQLiteGraphStore

CHUNKS, ENTITIES, FACTS = 20, 500, 2000
CHANGES = 1 + CHUNKS + ENTITIES + FACTS  # change-log rows one batch writes


def write_batch(store: SQLiteGraphStore, n: int) -> None:
    tag = f"batch-{n}"
    chunks = [
        Chunk(id=f"{tag}-c{i}", source_id=tag, ordinal=i, text=f"chunk {i} of {tag} words")
        for i in range(CHUNKS)
    ]
    entities = [
        Entity(id=f"{tag}-e{i}", name=f"{tag} entity {i}", type=tag) for i in range(ENTITIES)
    ]
    facts = [
        Fact(
            id=f"{tag}-f{i}",
            subject_id=f"{tag}-e{i % ENTITIES}",
            predicate=tag,
            object_id=f"{tag}-e{(7 * i + 1) % ENTITIES}",
            confidence=0.5,
        )
        for i in range(FACTS)
    ]
    print(f"writing {n}", flush=True)
    with store.transaction():
        store.upsert_sources([Source(id=tag, text=tag)])
        store.upsert_chunks(chunks)
        store.upsert_entities(entities)
        store.upsert_facts(facts)
    print(f"committed {n}", flush=True)


def main() -> None:
    store = SQLiteGraphStore(sys.argv[1])
    n = int(sys.argv[2])
    while True:
        write_batch(store, n)
        n += 1


if __name__ == "__main__":
    main()
