"""`evergraph doctor`: checks each external system and says exactly what to fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from evergraph.config import Settings
from evergraph.errors import EvergraphError
from evergraph.runtime import build_embedder, build_llm, build_store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


class _Ping(BaseModel):
    """The smallest structured answer that proves the schema path works."""

    answer: str


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except EvergraphError as e:
        return Check(name, False, e.message, e.fix or "")


def check_store(settings: Settings) -> Check:
    def probe() -> str:
        store = build_store(settings)
        try:
            if store.location.startswith(("neo4j", "bolt")):
                from evergraph.graph.store.neo4j import Neo4jGraphStore, check_neo4j

                if isinstance(store, Neo4jGraphStore):
                    return check_neo4j(store)
            s = store.stats()
        finally:
            store.close()
        return (
            f"{store.location} (schema v{s.schema_version}): {s.sources} sources, "
            f"{s.entities} entities, {s.facts} facts"
        )

    return _run("store", probe)


def check_embedder(settings: Settings) -> Check:
    def probe() -> str:
        t0 = time.perf_counter()
        emb = build_embedder(settings)
        emb.embed(["Evergraph doctor check"])
        return f"{emb.name}, {emb.dim} dims, loaded in {time.perf_counter() - t0:.1f} s"

    return _run("embedder", probe)


async def _check_llm(settings: Settings) -> Check:
    llm = build_llm(settings)
    try:
        served = await llm.models()
        if settings.llm.model not in served:
            return Check(
                "llm",
                False,
                f"{settings.llm.base_url} serves {served}, not {settings.llm.model!r}",
                f"set EVERGRAPH_LLM__MODEL to one of {served}",
            )
        t0 = time.perf_counter()
        samples = await llm.structured(
            [{"role": "user", "content": 'Reply with {"answer": "ok"}.'}],
            _Ping,
            n=2,
            max_tokens=20,
        )
        return Check(
            "llm",
            True,
            f"{settings.llm.model} at {settings.llm.base_url}: {len(samples.values)}/2 valid "
            f"samples ({settings.llm.structured_mode.value}) in {time.perf_counter() - t0:.1f} s, "
            f"{samples.usage.requests} request(s), {samples.usage.prompt_tokens} prompt tokens",
        )
    except EvergraphError as e:
        return Check("llm", False, e.message, e.fix or "")
    finally:
        await llm.aclose()


def run_checks(settings: Settings, *, llm: bool = True, embedder: bool = True) -> list[Check]:
    checks = [check_store(settings)]
    if embedder:
        checks.append(check_embedder(settings))
    if llm:
        checks.append(asyncio.run(_check_llm(settings)))
    return checks
