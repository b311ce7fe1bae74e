"""The mapping job: paper edges, dates, failures recorded and retried, resume, Ray parity."""

from __future__ import annotations

import importlib.util
import json
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from evergraph.errors import UnreachableError
from evergraph.graph import views
from evergraph.graph.models import Entity, Fact
from evergraph.graph.store.sqlite import SQLiteGraphStore
from evergraph.llm.base import LLM, Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.mapping.concepts import APPEARS_IN, CO_OCCURS
from evergraph.mapping.job import FAILURES
from evergraph.mapping.options import Executor, MapOptions
from tests.unit.mapping_fixtures import PAPERS, answer, day, run_map


def graph_of(store: SQLiteGraphStore) -> set[tuple[Any, ...]]:
    """Everything about the graph but system time: comparable between two runs."""
    names = {e.id: (e.name, e.type, e.mentions) for e in views.records(store, Entity)}
    return {
        (names[f.subject_id], f.predicate, names.get(f.object_id or ""), f.object_value,
         f.support, f.valid_from, f.status.value)
        for f in views.records(store, Fact)
    }  # fmt: skip


def test_papers_become_concepts_with_dated_paper_edges(tmp_path: Path) -> None:
    summary, store = run_map(tmp_path, tmp_path / "out")
    assert summary.build.totals.documents == len(PAPERS) and summary.failed == []
    facts = list(views.records(store, Fact))
    names = {e.id: e.name for e in views.records(store, Entity)}
    appears = {(names[f.subject_id], f.object_value): f.valid_from for f in facts
               if f.predicate == APPEARS_IN}  # fmt: skip
    expected = {(c, key): day(date) for key, date, concepts in PAPERS for c in concepts}
    assert appears == expected
    pairs = {
        frozenset((names[f.subject_id], names[f.object_id or ""])): f
        for f in facts
        if f.predicate == CO_OCCURS
    }
    together = pairs[frozenset(("dark matter", "N-body simulations"))]
    assert together.support == 2 and together.valid_from == day("2007-01-15")
    assert frozenset(("exoplanets", "dark matter")) not in pairs
    assert any(f.predicate == "probes" for f in facts)  # the extractor's own relations stay


def test_a_paper_that_keeps_failing_is_recorded_then_retried_next_run(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        text = messages[-1]["content"]
        calls.append(text)
        if "exoplanets" in text:
            raise ConnectionError("server went away")
        return answer(messages, schema, n)

    def factory() -> AbstractAsyncContextManager[LLM]:
        return nullcontext(ScriptedLLM([flaky] * 1000))

    out = tmp_path / "out"
    options = MapOptions(attempts=2, backoff_s=0.0)
    summary, store = run_map(tmp_path, out, options=options, llm_factory=factory)
    assert len(summary.failed) == 1
    assert summary.build.totals.documents == len(PAPERS) - 1
    assert sum("exoplanets" in c for c in calls) == 2  # both attempts
    logged = [json.loads(line) for line in (out / FAILURES).read_text().splitlines()]
    assert [(r["paper"], r["attempts"]) for r in logged] == [("p5", 2)]
    assert "server went away" in logged[0]["error"]
    store.close()

    summary, store = run_map(tmp_path, out)  # the server is back: only the failed paper runs
    assert summary.failed == [] and summary.build.totals.documents == 1
    assert summary.build.totals.skipped == len(PAPERS) - 1
    assert "exoplanets" in {e.name for e in views.records(store, Entity)}


def test_an_unreachable_server_stops_the_job_instead_of_failing_every_paper(
    tmp_path: Path,
) -> None:
    def down(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        if "exoplanets" in messages[-1]["content"]:
            raise UnreachableError("cannot reach the LLM server at http://127.0.0.1:1/v1")
        return answer(messages, schema, n)

    def factory() -> AbstractAsyncContextManager[LLM]:
        return nullcontext(ScriptedLLM([down] * 1000))

    out = tmp_path / "out"
    with pytest.raises(UnreachableError):
        run_map(tmp_path, out, options=MapOptions(attempts=2, backoff_s=0.0), llm_factory=factory)
    assert not (out / FAILURES).exists()  # not the papers' fault: none recorded as failed
    with SQLiteGraphStore(out / "graph.db") as store:
        kept = store.stats().sources
    assert kept < len(PAPERS)

    summary, store = run_map(tmp_path, out)  # the server is back: the job resumes
    assert summary.failed == [] and summary.build.totals.skipped == kept
    assert summary.build.totals.documents == len(PAPERS) - kept
    assert "exoplanets" in {e.name for e in views.records(store, Entity)}
    store.close()


def test_a_second_run_duplicates_nothing(tmp_path: Path) -> None:
    _, store = run_map(tmp_path, tmp_path / "out")
    before = graph_of(store)
    store.close()
    summary, store = run_map(tmp_path, tmp_path / "out")
    assert summary.build.totals.skipped == len(PAPERS)
    assert graph_of(store) == before


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' to test the Ray executor",
)
def test_ray_executor_builds_the_same_graph_as_the_local_one(tmp_path: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        _, local = run_map(tmp_path, tmp_path / "local")
        options = MapOptions(executor=Executor.ray, workers=2, batch_size=2)
        summary, on_ray = run_map(tmp_path, tmp_path / "ray", options=options)
    finally:
        ray.shutdown()
    assert summary.build.totals.documents == len(PAPERS)
    assert graph_of(on_ray) == graph_of(local)
    assert len(graph_of(local)) > len(PAPERS)


def test_a_concept_type_file_loads_as_a_schema_whose_descriptions_reach_the_prompt(
    tmp_path: Path,
) -> None:
    from evergraph.agents.extract import describe_schema
    from evergraph.graph.schema import load_schema

    path = tmp_path / "kg4s.json"
    path.write_text(json.dumps({"method": "an approach", "object": "an entity studied"}))
    schema = load_schema(path)
    assert schema.entity_types == ["method", "object"] and schema.relations == []
    prompt = describe_schema(schema)
    assert "- method: an approach" in prompt and "- object: an entity studied" in prompt
    assert "Predicates" not in prompt  # concept types alone: tagging, no relations asked


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' to test the Ray executor",
)
def test_an_unreachable_server_on_ray_is_evergraphs_error_not_rays(tmp_path: Path) -> None:
    import ray

    def factory() -> AbstractAsyncContextManager[LLM]:
        def down(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
            raise UnreachableError("cannot reach the LLM server", fix="start one")

        return nullcontext(ScriptedLLM([down] * 100))

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        options = MapOptions(executor=Executor.ray, workers=1, batch_size=2, backoff_s=0.0)
        with pytest.raises(UnreachableError, match="cannot reach") as raised:
            run_map(tmp_path, tmp_path / "ray", options=options, llm_factory=factory)
    finally:
        ray.shutdown()
    assert raised.value.fix == "start one"
