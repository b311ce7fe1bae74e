"""OpenAICompatLLM against real model servers: vLLM (n honoured) and llama.cpp (n ignored).

Point EVERGRAPH_TEST_VLLM_URL / EVERGRAPH_TEST_LLAMACPP_URL at the servers' /v1 roots (model
names from EVERGRAPH_TEST_VLLM_MODEL / EVERGRAPH_TEST_LLAMACPP_MODEL). A missing server skips
its tests, unless EVERGRAPH_REQUIRE_SERVICES=1 (CI), where it fails them. The test model is a
0.5B model that invents facts: the tests check structure and flow, never world knowledge.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from evergraph.config import LLMSettings, SamplingMode, StructuredMode
from evergraph.errors import ModelNotFoundError, ServiceError
from evergraph.llm.base import Message
from evergraph.llm.cache import ResponseCache
from evergraph.llm.openai_compat import OpenAICompatLLM

pytestmark = pytest.mark.llm

R = TypeVar("R")
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
MAX_TOKENS = 80  # the answer needs about 20 tokens; these machines have 2 cores
PROMPT: list[Message] = [
    {"role": "system", "content": "You extract places from sentences."},
    {
        "role": "user",
        "content": "Sentence: 'Last spring Ana moved from Porto to Oslo, in Norway.' "
        "Which city did she move to, and in which country is it?",
    },
]


class Place(BaseModel):
    city: str
    country: str


@dataclass(frozen=True)
class Server:
    name: str
    settings: LLMSettings


SERVERS = {
    "vllm": ("EVERGRAPH_TEST_VLLM_URL", "EVERGRAPH_TEST_VLLM_MODEL", StructuredMode.JSON_SCHEMA),
    "llamacpp": (
        "EVERGRAPH_TEST_LLAMACPP_URL",
        "EVERGRAPH_TEST_LLAMACPP_MODEL",
        StructuredMode.JSON_OBJECT,
    ),
}


def require_server(name: str) -> Server:
    url_env, model_env, mode = SERVERS[name]
    url = os.environ.get(url_env)
    if not url:
        reason = f"{url_env} is not set: no {name} server to test against"
        if os.environ.get("EVERGRAPH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and EVERGRAPH_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    settings = LLMSettings(
        base_url=url,
        model=os.environ.get(model_env, DEFAULT_MODEL),
        structured_mode=mode,
        sampling_mode=SamplingMode.AUTO,
        temperature=0.7,
        max_tokens=MAX_TOKENS,
        timeout_s=300,
        max_retries=1,
    )
    return Server(name, settings)


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    return require_server(request.param)


@pytest.fixture
def vllm() -> Server:
    return require_server("vllm")


@pytest.fixture
def llamacpp() -> Server:
    return require_server("llamacpp")


@dataclass
class Recorded:
    """The chat-completion bodies the client actually sent."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))


@asynccontextmanager
async def client(
    settings: LLMSettings, cache: ResponseCache | None = None
) -> AsyncIterator[tuple[OpenAICompatLLM, Recorded]]:
    recorded = Recorded()
    async with httpx.AsyncClient(event_hooks={"request": [recorded]}) as http:
        yield OpenAICompatLLM(settings, cache=cache, http_client=http), recorded


def run(make: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(make())


def test_vllm_draws_n_valid_samples_in_one_request(vllm: Server) -> None:
    async def scenario() -> None:
        async with client(vllm.settings) as (llm, sent):
            single = await llm.structured(PROMPT, Place, n=1)
            triple = await llm.structured(PROMPT, Place, n=3)

        assert len(triple.values) == 3, triple
        assert all(isinstance(p, Place) and p.city and p.country for p in triple.values)
        assert triple.usage.requests == 1
        assert [b["n"] for b in sent.bodies] == [1, 3]
        # The prompt is processed (and billed) once for all three samples.
        assert single.usage.prompt_tokens > 0
        assert triple.usage.prompt_tokens == single.usage.prompt_tokens
        assert triple.usage.completion_tokens > single.usage.completion_tokens
        assert sent.bodies[1]["response_format"]["type"] == "json_schema"

    run(scenario)


def test_llamacpp_draws_n_valid_samples_by_repeats_and_remembers(llamacpp: Server) -> None:
    async def scenario() -> None:
        async with client(llamacpp.settings) as (llm, sent):
            first = await llm.structured(PROMPT, Place, n=3)
            asked_first = [(b["n"], b.get("seed")) for b in sent.bodies]
            sent.bodies.clear()
            second = await llm.structured(PROMPT, Place, n=2)
            asked_second = [(b["n"], b.get("seed")) for b in sent.bodies]

        assert len(first.values) == 3, first
        assert all(p.city and p.country for p in first.values)
        # Asked for 3 in one request, got 1 (llama.cpp ignores n), topped up with 2 repeats
        # of distinct seeds; the next call goes straight to repeats.
        assert asked_first[0] == (3, 0)
        assert sorted(asked_first[1:]) == [(1, 1), (1, 2)]
        assert first.usage.requests == 3
        assert len(second.values) == 2, second
        assert sorted(asked_second) == [(1, 0), (1, 1)]
        assert sent.bodies[0]["response_format"]["type"] == "json_object"

    run(scenario)


def test_an_identical_second_call_is_answered_by_the_cache(server: Server, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm.db")

    async def scenario() -> None:
        async with client(server.settings, cache) as (llm, sent):
            first = await llm.structured(PROMPT, Place, n=2)
            requests_sent = len(sent.bodies)
            second = await llm.structured(PROMPT, Place, n=2)

        assert first.usage.requests >= 1 and first.usage.prompt_tokens > 0
        assert len(sent.bodies) == requests_sent  # nothing new went to the server
        assert second.values == first.values
        assert second.usage.requests == 0
        assert second.usage.prompt_tokens == second.usage.completion_tokens == 0
        assert second.usage.cached_requests >= 1

    run(scenario)


def test_unknown_model_lists_the_served_models(server: Server) -> None:
    wrong = server.settings.model_copy(update={"model": "no-such-model"})

    async def scenario() -> None:
        async with client(wrong) as (llm, sent):
            with pytest.raises(ModelNotFoundError) as err:
                await llm.structured(PROMPT, Place)
            served = await llm.models()

        assert server.settings.model in served
        assert server.settings.model in err.value.message
        assert sent.bodies == []  # caught before any generation

    run(scenario)


def test_vllm_404_for_an_unknown_model_is_translated(vllm: Server) -> None:
    wrong = vllm.settings.model_copy(update={"model": "no-such-model"})

    async def scenario() -> None:
        async with client(wrong) as (llm, _):
            llm._model_served = True  # skip the /models pre-check to reach vLLM's own 404
            with pytest.raises(ModelNotFoundError, match=vllm.settings.model):
                await llm.structured(PROMPT, Place)

    run(scenario)


def test_vllm_rejects_max_tokens_beyond_the_context(vllm: Server) -> None:
    too_long = vllm.settings.model_copy(update={"max_tokens": 1_000_000})

    async def scenario() -> None:
        async with client(too_long) as (llm, _):
            with pytest.raises(ServiceError, match="does not fit the context"):
                await llm.structured(PROMPT, Place)

    run(scenario)


def test_llamacpp_rejects_json_schema_mode_with_a_fix(llamacpp: Server) -> None:
    wrong_mode = llamacpp.settings.model_copy(
        update={"structured_mode": StructuredMode.JSON_SCHEMA}
    )

    async def scenario() -> None:
        async with client(wrong_mode) as (llm, _):
            with pytest.raises(ServiceError) as err:
                await llm.structured(PROMPT, Place)
        assert err.value.fix is not None and "json_object" in err.value.fix

    run(scenario)


def test_closed_port_is_a_service_error_with_the_fix() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=10)

    async def scenario() -> None:
        llm = OpenAICompatLLM(settings, cache=None)
        try:
            with pytest.raises(ServiceError) as err:
                await llm.structured(PROMPT, Place)
        finally:
            await llm.aclose()
        assert f"127.0.0.1:{port}" in err.value.message
        assert err.value.fix is not None and "evergraph model serve" in err.value.fix

    run(scenario)
