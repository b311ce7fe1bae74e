"""The HTTP API on a real uvicorn server on 127.0.0.1, through the typed client: a round trip
of every endpoint with the scripted model, and the shapes of its answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from evergraph.agents.ace_types import Feedback
from evergraph.client import ClientError, EvergraphClient
from evergraph.server.schemas import DocumentIn, JobState
from tests.unit.server_fixtures import doc, running

DOCS = [DocumentIn.model_validate(doc(i, 2018 + i)) for i in range(1, 4)]


def test_round_trip_of_every_endpoint(tmp_path: Path) -> None:
    with running(tmp_path) as (url, _), EvergraphClient(url, namespace="app") as eg:
        raw = httpx.Client(base_url=url)
        assert raw.get("/healthz").json() == {"status": "ok"}
        assert raw.get("/readyz").json() == {"status": "ready"}

        job = eg.add_documents(DOCS, samples=1)
        assert job.state in (JobState.QUEUED, JobState.RUNNING) and job.documents == 3
        job = eg.wait(job, timeout=60)
        assert job.state is JobState.DONE, job.error
        assert job.totals is not None and job.totals.documents == 3 and job.totals.facts == 3

        (found,) = eg.facts("telescope t2").entities  # names match ignoring case
        assert found.entity.name == "Telescope T2" and found.entity.embedding is None
        (fact,) = found.facts
        assert fact.predicate == "observed" and found.names[fact.object_id or ""] == "galaxy G2"
        before = datetime(2020, 1, 1, tzinfo=UTC)  # T1: mid-2019, T2: mid-2020, T3: 2021
        assert eg.facts("Telescope T2", as_of=before).entities[0].facts == []
        assert len(eg.facts("Telescope T2", as_of=before, history=True).entities[0].facts) == 1
        assert eg.facts("Telescope T2", predicate="built").entities[0].facts == []

        hits = eg.search("galaxy G3", k=2).hits
        assert len(hits) == 2 and "galaxy G3" in hits[0].text
        assert eg.search("galaxy G3", as_of=before).hits[0].text.startswith("Telescope T1")

        asked = eg.ask("What did Telescope T2 observe?")
        assert asked.kind == "answer" and asked.answer is not None and asked.refusal is None
        assert asked.answer.text == "galaxy G2"
        (cited,) = asked.answer.citations
        entry = asked.answer.ledger.get(cited)
        assert entry is not None and "observed galaxy G2" in entry.quote

        assert eg.playbooks() == []
        empty = eg.playbook_context("solver", "Which galaxy did T1 observe?")
        assert empty.bullet_ids == []
        adapted = eg.record_outcome(
            "solver", "Which galaxy did T1 observe?", "galaxy G1", Feedback(success=True)
        )
        assert adapted.version >= 1 and adapted.applied and adapted.llm_calls == 2
        assert eg.playbooks() == ["solver"]
        history = eg.playbook_history("solver")
        assert [h.seq for h in history] == list(range(1, adapted.version + 1))
        assert eg.playbook_history("solver", since=adapted.version) == []
        context = eg.playbook_context("solver", "Which galaxy did T1 observe?")
        assert context.bullet_ids and context.bullet_ids[0] in context.text

        with pytest.raises(ClientError) as missing:
            eg.job("0" * 32)
        assert missing.value.status == 404
        with pytest.raises(ClientError) as nobody:
            eg.facts("Nobody")
        assert nobody.value.status == 404 and "Nobody" in nobody.value.message
        with pytest.raises(ClientError) as no_playbook:
            eg.playbook_history("never-written")
        assert no_playbook.value.status == 404

        metrics = raw.get("/metrics").text
        assert 'route="/v1/namespaces/{namespace}/search"' in metrics
        assert "evergraph_ingest_queue_depth 0.0" in metrics
        prompt = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('evergraph_llm_tokens_total{kind="prompt",operation="ask"}')
        ]
        assert prompt and prompt[0] > 0
        paths = raw.get("/openapi.json").json()["paths"]
        assert {
            "/v1/namespaces/{namespace}/documents",
            "/v1/namespaces/{namespace}/jobs/{job_id}",
            "/v1/namespaces/{namespace}/facts",
            "/v1/namespaces/{namespace}/search",
            "/v1/namespaces/{namespace}/ask",
            "/v1/namespaces/{namespace}/playbooks/{name}/context",
            "/v1/namespaces/{namespace}/playbooks/{name}/outcomes",
            "/v1/namespaces/{namespace}/playbooks/{name}/history",
            "/healthz",
            "/readyz",
        } <= set(paths)


def test_a_question_without_evidence_is_refused(tmp_path: Path) -> None:
    with running(tmp_path) as (url, _), EvergraphClient(url, namespace="app") as eg:
        eg.wait(eg.add_documents(DOCS[:1]), timeout=60)
        asked = eg.ask("Who painted the Mona Lisa?", max_rounds=1)
    assert asked.kind == "refusal" and asked.refusal is not None and asked.answer is None
    assert asked.refusal.missing_hops
