"""Request and response bodies of the API where the library has no model of its own; the
rest (`Fact`, `Entity`, `Answer`, `Refusal`, `Hit`, `Totals`, playbook models) are the
library's own."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from evergraph.agents.ace_types import Feedback
from evergraph.agents.build import Totals
from evergraph.agents.evidence_types import Answer, Refusal
from evergraph.graph.ingest import Document
from evergraph.graph.models import Entity, Fact
from evergraph.retrieval.hybrid import Hit, Mode

MAX_TEXT = 200_000  # characters in one document
MAX_DOCUMENTS = 500  # documents in one request
MAX_QUERY = 2_000
# Some text that is not blank: declared in the schema, so that clients (and schemathesis) know a
# blank query is refused instead of finding out from a 400.
NOT_BLANK = r"\S"
MAX_PREDICATE = 200
MAX_JOB_ID = 64


class ErrorBody(BaseModel):
    error: str
    fix: str | None = None


class DocumentIn(BaseModel):
    """One document or episode; `key` is your id for it (a new text under the same key
    supersedes the old version)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    key: str = Field("", max_length=500)
    title: str = Field("", max_length=1_000)
    date: datetime | None = None  # when it was published (world time)
    uri: str = Field("", max_length=2_000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("date")
    @classmethod
    def _utc(cls, date: datetime | None) -> datetime | None:
        """In UTC (naive means UTC, as everywhere in the store); a date outside years 1-9999
        once in UTC would be stored out of range and break every read of the namespace."""
        if date is None:
            return None
        if date.tzinfo is None:
            return date.replace(tzinfo=UTC)
        try:
            return date.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range in UTC (years 1-9999)") from None

    def document(self, origin: str) -> Document:
        return Document(
            key=self.key,
            title=self.title,
            text=self.text,
            date=self.date,
            uri=self.uri,
            metadata=self.metadata,
            origin=origin,
        )


class IngestRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    samples: int | None = Field(None, ge=1, le=16)  # extraction samples; default: settings


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(BaseModel):
    """An ingestion job. A job cut short by a shutdown stays `running` and resumes from its
    checkpoint when the server starts again."""

    id: str
    namespace: str
    state: JobState = JobState.QUEUED
    documents: int
    done: int = 0  # documents handled, skipped ones included
    samples: int | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    totals: Totals | None = None
    error: str | None = None


class EntityFacts(BaseModel):
    entity: Entity
    facts: list[Fact]
    names: dict[str, str]  # entity id -> name, for the facts' subjects and objects


class FactsResponse(BaseModel):
    entities: list[EntityFacts]


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY, pattern=NOT_BLANK)
    k: int = Field(10, ge=1, le=100)
    as_of: datetime | None = None
    modes: list[Mode] | None = Field(None, min_length=1)  # default: all


class SearchResponse(BaseModel):
    hits: list[Hit]


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUERY, pattern=NOT_BLANK)
    as_of: datetime | None = None
    max_rounds: int | None = Field(None, ge=1, le=8)  # retrieve-read rounds; default: 4


class AskResponse(BaseModel):
    """The EvidenceLoop's typed result: an answer with citations, or a refusal."""

    kind: Literal["answer", "refusal"]
    answer: Answer | None = None
    refusal: Refusal | None = None


PLAYBOOK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_TASK = 20_000
MAX_VERSION = 2**63 - 1  # a playbook version is a SQLite INTEGER: larger ones overflow


def _bounded(feedback: Feedback) -> Feedback:
    """Its texts go into the reflector's prompt, as the task and answer do: the same bound."""
    if any(len(text or "") > MAX_TASK for text in (feedback.ground_truth, feedback.environment)):
        raise ValueError(f"ground_truth and environment take at most {MAX_TASK} characters")
    return feedback


FeedbackIn = Annotated[Feedback, AfterValidator(_bounded)]


class OutcomeRequest(BaseModel):
    """An answer the application gave to a task, and what it learned about it."""

    task: str = Field(min_length=1, max_length=MAX_TASK)
    answer: str = Field(max_length=MAX_TASK)
    feedback: FeedbackIn = Field(default_factory=Feedback)


class PlaybookList(BaseModel):
    names: list[str]
