"""The checkpointers of the project's LangGraph graphs, all built here with one serializer.

LangGraph stores a graph's state with msgpack and rebuilds the objects by module and class
name. It only warns today when it rebuilds a class nobody registered ("Deserializing
unregistered type ...") but a future version refuses to, so a resumed ingest, map or
playbook training would lose its state. The serializer here registers every class the
states hold (`CHECKPOINTED`); anything else is left as plain data, never imported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from evergraph.agents.ace_prompts import ReflectOut
from evergraph.agents.ace_types import Feedback, Step
from evergraph.llm.base import Usage
from evergraph.playbooks.apply import DeltaResult
from evergraph.playbooks.deltas import AddOp, MergeOp, RemoveOp, TagOp, UpdateOp
from evergraph.playbooks.models import Playbook
from evergraph.playbooks.render import RenderedPlaybook

# The project's classes a checkpointed state holds as values (nested models are stored as
# their fields): those of `ace_graph.AceState`; `build.BuildState` holds only builtins.
# tests/unit/test_checkpoints.py fails when a state gains a class missing here.
CHECKPOINTED: tuple[type, ...] = (
    Playbook,
    Feedback,
    RenderedPlaybook,
    ReflectOut,
    AddOp,
    UpdateOp,
    TagOp,
    MergeOp,
    RemoveOp,
    DeltaResult,
    Usage,
    Step,
)


def serializer() -> JsonPlusSerializer:
    """LangGraph's serializer with the project's state classes registered."""
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED)


@asynccontextmanager
async def open_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """The SQLite checkpointer at `path` (created on first use), as
    `AsyncSqliteSaver.from_conn_string` opens it but with `serializer()`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        yield AsyncSqliteSaver(conn, serde=serializer())


def memory_checkpointer() -> InMemorySaver:
    """A checkpointer in memory (a step resumes within the process), with `serializer()`."""
    return InMemorySaver(serde=serializer())
