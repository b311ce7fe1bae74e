"""A small typed client for Evergraph's HTTP API (`evergraph serve`).

    with EvergraphClient("http://127.0.0.1:8080", namespace="myapp", api_key=KEY) as eg:
        job = eg.wait(eg.add_documents([DocumentIn(text="...", title="...")]))
        hits = eg.search("who observed G1?").hits

Responses are the server's own pydantic models; an error response raises `ClientError` with
the server's message, fix and status.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from evergraph.agents.ace_types import Feedback
from evergraph.errors import EvergraphError
from evergraph.memory import Adaptation
from evergraph.playbooks.history import HistoryEntry
from evergraph.playbooks.render import RenderedPlaybook
from evergraph.server.schemas import (
    AskRequest,
    AskResponse,
    DocumentIn,
    FactsResponse,
    IngestRequest,
    Job,
    JobState,
    OutcomeRequest,
    PlaybookList,
    SearchRequest,
    SearchResponse,
)

M = TypeVar("M", bound=BaseModel)
_HISTORY = TypeAdapter(list[HistoryEntry])


class ClientError(EvergraphError):
    def __init__(self, message: str, *, status: int, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


class EvergraphClient:
    def __init__(
        self,
        base_url: str,
        *,
        namespace: str,
        api_key: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.namespace = namespace
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> EvergraphClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> bytes:
        response = self._http.request(method, f"/v1/namespaces/{self.namespace}{path}", **kwargs)
        if response.is_error:
            try:
                body = response.json()
            except ValueError:
                body = {"error": response.text or response.reason_phrase}
            raise ClientError(
                str(body.get("error", body)), status=response.status_code, fix=body.get("fix")
            )
        return response.content

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate_json(self._request(method, path, **kwargs))

    # -- graph ------------------------------------------------------------------------------
    def add_documents(self, documents: Sequence[DocumentIn], *, samples: int | None = None) -> Job:
        body = IngestRequest(documents=list(documents), samples=samples)
        return self._call(Job, "POST", "/documents", json=body.model_dump(mode="json"))

    def job(self, job_id: str) -> Job:
        return self._call(Job, "GET", f"/jobs/{job_id}")

    def wait(self, job: Job, *, timeout: float = 600.0, poll: float = 0.2) -> Job:
        """Poll until the job is done or failed (or `timeout` passes: TimeoutError)."""
        deadline = time.monotonic() + timeout
        while job.state not in (JobState.DONE, JobState.FAILED):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.id} is still {job.state.value}")
            time.sleep(poll)
            job = self.job(job.id)
        return job

    def facts(
        self,
        entity: str,
        *,
        predicate: str | None = None,
        as_of: datetime | None = None,
        recorded_at: datetime | None = None,
        history: bool = False,
    ) -> FactsResponse:
        params: dict[str, str] = {"entity": entity, "history": str(history).lower()}
        for name, value in (("as_of", as_of), ("recorded_at", recorded_at)):
            if value is not None:
                params[name] = value.isoformat()
        if predicate is not None:
            params["predicate"] = predicate
        return self._call(FactsResponse, "GET", "/facts", params=params)

    def search(self, query: str, *, k: int = 10, as_of: datetime | None = None) -> SearchResponse:
        body = SearchRequest(query=query, k=k, as_of=as_of)
        return self._call(SearchResponse, "POST", "/search", json=body.model_dump(mode="json"))

    def ask(
        self, question: str, *, as_of: datetime | None = None, max_rounds: int | None = None
    ) -> AskResponse:
        body = AskRequest(question=question, as_of=as_of, max_rounds=max_rounds)
        return self._call(AskResponse, "POST", "/ask", json=body.model_dump(mode="json"))

    # -- playbooks ----------------------------------------------------------------------------
    def playbooks(self) -> list[str]:
        return self._call(PlaybookList, "GET", "/playbooks").names

    def playbook_context(
        self, name: str, task: str, *, budget: int | None = None
    ) -> RenderedPlaybook:
        params: dict[str, str | int] = {"task": task}
        if budget is not None:
            params["budget"] = budget
        return self._call(RenderedPlaybook, "GET", f"/playbooks/{name}/context", params=params)

    def record_outcome(
        self, name: str, task: str, answer: str, feedback: Feedback | None = None
    ) -> Adaptation:
        body = OutcomeRequest(task=task, answer=answer, feedback=feedback or Feedback())
        path = f"/playbooks/{name}/outcomes"
        return self._call(Adaptation, "POST", path, json=body.model_dump(mode="json"))

    def playbook_history(self, name: str, *, since: int = 0) -> list[HistoryEntry]:
        raw = self._request("GET", f"/playbooks/{name}/history", params={"since": since})
        return _HISTORY.validate_json(raw)
