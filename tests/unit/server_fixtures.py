"""Shared by the server tests: a scripted model for every agent the server runs, and real
uvicorn servers on free loopback ports."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from evergraph.agents.ace_prompts import CurateOut, ReflectOut
from evergraph.agents.evidence_prompts import AnswerOut, PlanOut, ReadOut
from evergraph.agents.extract_rules import ChunkOut
from evergraph.config import Settings
from evergraph.embed.testing import HashingEmbedder
from evergraph.llm.base import Message
from evergraph.llm.testing import ScriptedLLM
from evergraph.server.app import create_app
from evergraph.server.services import ServerOptions, Services

OBSERVED = re.compile(r"(Telescope T\d+) observed (galaxy G\d+)")


def respond(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
    """Extraction: each "Telescope Tn observed galaxy Gn" is one fact. The EvidenceLoop: one
    hop; the reader quotes a passage saying what the telescope the question names observed;
    the answer cites E1."""
    prompt = messages[-1]["content"]
    if schema is ChunkOut:
        pairs = OBSERVED.findall(prompt)
        out = {
            "entities": [
                {"name": name, "type": kind}
                for t, g in pairs
                for name, kind in ((t, "Instrument"), (g, "Object"))
            ],
            "relations": [
                {"subject": t, "predicate": "observed", "object": g, "quote": f"{t} observed {g}"}
                for t, g in pairs
            ],
        }
        return [json.dumps(out)] * n
    if schema is PlanOut:
        return [json.dumps({"hops": [prompt.removeprefix("Question: ")]})] * n
    if schema is ReadOut:
        asked = re.search(r"Telescope T\d+", prompt.split("\n", 1)[0])
        subject = re.escape(asked[0]) if asked else "(?!)"  # a question about no telescope
        found = re.search(rf"^Passage: .*?({subject} observed (galaxy G\d+))", prompt, re.M)
        claims = [{"quote": found[1], "answer": found[2]}] if found else []
        return [json.dumps({"claims": claims})] * n
    if schema is ReflectOut:
        reflection = {
            "error": "none",
            "root_cause": "the answer named the galaxy",
            "key_insight": "Name the galaxy the telescope observed.",
            "bullet_tags": [],
        }
        return [json.dumps(reflection)] * n
    if issubclass(schema, CurateOut):
        task = re.search(r"did T(\d+) observe", prompt)  # the task, not the playbook's bullets
        number = task[1] if task else "0"
        content = f"Telescope T{number} observed galaxy G{number}."
        add = {"op": "ADD", "section": "strategies", "content": content}
        return [json.dumps({"operations": [add]})] * n
    assert schema is AnswerOut, schema
    answer = re.search(r"-> (.*?)\. Quote", prompt)
    return [json.dumps({"answer": answer[1] if answer else "?", "citations": ["E1"]})] * n


def scripted() -> ScriptedLLM:
    return ScriptedLLM([respond] * 100_000, max_retries=0)


def doc(i: int, year: int = 2020) -> dict[str, object]:
    return {
        "key": f"doc{i}",
        "title": f"Observation {i}",
        "text": f"Telescope T{i} observed galaxy G{i}.",
        "date": f"{year}-06-01T00:00:00Z",
    }


def services(home: Path, settings: Settings | None = None, **options: object) -> Services:
    settings = settings or Settings(home=home)
    settings.extract.samples = 1
    return Services(
        settings=settings,
        llm=scripted(),
        embedder_factory=lambda: HashingEmbedder(dim=64),
        options=ServerOptions(**options),  # type: ignore[arg-type]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in a thread; stopped (gracefully) on exit."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextmanager
def running(home: Path, **options: object) -> Iterator[tuple[str, Services]]:
    svc = services(home, **options)
    with serving(create_app(svc)) as url:
        yield url, svc
