"""The project's checkpointers rebuild its state classes as registered types: a resumed step
deserializes with no "unregistered type" warning (which a future LangGraph turns into a
refusal), and every class a graph state holds is registered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener

from evergraph.agents.ace_graph import AceAgent, AceState
from evergraph.agents.ace_types import Feedback, Step
from evergraph.agents.build import BuildState
from evergraph.agents.checkpoints import CHECKPOINTED, memory_checkpointer, open_checkpointer
from evergraph.embed.testing import HashingEmbedder
from evergraph.llm.testing import ScriptedLLM
from tests.unit.test_ace_graph import NOW, TASK, curated, generated, playbook, reflected

Savers = Callable[[Path], Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]]]


def sqlite(tmp_path: Path) -> Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]]:
    """A new connection per run, as a second process resuming the first one's step."""
    return lambda: open_checkpointer(tmp_path / "checkpoints.db")


def memory(_: Path) -> Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]]:
    saver = memory_checkpointer()
    return lambda: nullcontext(saver)


@pytest.mark.parametrize("savers", [sqlite, memory])
def test_a_resumed_step_rebuilds_its_state_as_registered_types(
    savers: Savers,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # LangGraph logs each unregistered type once per process: forget earlier tests' ones
    monkeypatch.setattr(jsonplus, "_warned_unregistered_types", set())
    events: list[SerdeEvent] = []
    unregister = register_serde_event_listener(events.append)

    def crash(*_: object) -> list[str]:
        raise RuntimeError("the server went away")

    llm = ScriptedLLM([generated("3"), reflected(), crash, curated()])
    saver = savers(tmp_path)

    async def attempt() -> Step:
        async with saver() as checkpointer:
            agent = AceAgent(llm, HashingEmbedder(), checkpointer=checkpointer, clock=lambda: NOW)
            return await agent.run(TASK, playbook(), feedback=Feedback(ground_truth="3"))

    try:
        with pytest.raises(RuntimeError):
            asyncio.run(attempt())
        with caplog.at_level(logging.WARNING, logger="langgraph"):
            step = asyncio.run(attempt())  # resumes: playbook, feedback, usage, ... read back
    finally:
        unregister()
    assert len(llm.requests) == 4 and step.answer == "3" and step.usage.requests == 3
    assert events == []
    assert "unregistered" not in caplog.text and "Blocked" not in caplog.text


def classes(hint: Any) -> set[type]:
    """The project's classes in a type hint, through unions, lists and Annotated."""
    if args := get_args(hint):
        return set().union(*(classes(a) for a in args))
    return {hint} if isinstance(hint, type) and hint.__module__.startswith("evergraph.") else set()


@pytest.mark.parametrize("state", [AceState, BuildState])
def test_every_class_a_graph_state_holds_is_registered(state: type) -> None:
    held = set().union(*(classes(h) for h in get_type_hints(state).values()))
    assert held <= set(CHECKPOINTED)
    assert state is not AceState or held == set(CHECKPOINTED)  # nothing registered in vain
