"""ScriptedLLM, the unit-test double of the LLM protocol, validates like the real client."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from evergraph.errors import OutputValidationError
from evergraph.llm.base import Message, Usage
from evergraph.llm.cache import RawChoice
from evergraph.llm.testing import ScriptedLLM, ScriptError, estimate_tokens

R = TypeVar("R")
PROMPT: list[Message] = [{"role": "user", "content": "Extract the place from: Lyon, France."}]
LYON = {"city": "Lyon", "country": "France"}


class Place(BaseModel):
    city: str
    country: str


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def test_strings_and_dicts_become_samples() -> None:
    llm = ScriptedLLM(['{"city": "Oslo", "country": "Norway"}', LYON, LYON])
    samples = run(llm.structured(PROMPT, Place, n=3))

    assert samples.values == [Place(city="Oslo", country="Norway"), Place(**LYON), Place(**LYON)]
    assert samples.requested == 3 and samples.model == "scripted"
    assert llm.remaining == 0


def test_invalid_and_cut_off_samples_are_dropped_and_counted() -> None:
    llm = ScriptedLLM(
        [LYON, '{"city": 3}', "not json", RawChoice(content='{"city": "Ly', finish_reason="length")]
    )
    samples = run(llm.structured(PROMPT, Place, n=4))

    assert samples.values == [Place(**LYON)]
    assert (samples.dropped_invalid, samples.dropped_length) == (2, 1)


def test_zero_valid_retries_with_feedback_then_succeeds() -> None:
    seen: list[list[Message]] = []

    def answer(messages: list[Message], schema: type[BaseModel], n: int) -> list[str]:
        seen.append(messages)
        assert schema is Place
        return ['{"city": "Lyon", "country": "France"}'] * n

    llm = ScriptedLLM(["{}", "{}", answer], max_retries=1)
    samples = run(llm.structured(PROMPT, Place, n=2))

    assert len(samples.values) == 2 and samples.dropped_invalid == 2
    (retry,) = seen
    assert retry[:-1] == PROMPT
    assert retry[-1]["role"] == "user"
    assert retry[-1]["content"].startswith("Your previous answer was invalid: ")
    assert [r.n for r in llm.requests] == [2, 2]


def test_output_validation_error_after_the_retries() -> None:
    llm = ScriptedLLM(["nope"] * 3, max_retries=2)
    with pytest.raises(OutputValidationError, match="3 invalid"):
        run(llm.structured(PROMPT, Place))
    assert llm.usage.requests == 3


def test_requests_are_recorded_for_assertions() -> None:
    llm = ScriptedLLM([LYON])
    run(llm.structured(PROMPT, Place, temperature=0.2, max_tokens=64))

    (request,) = llm.requests
    assert request.messages == PROMPT
    assert request.schema is Place
    assert (request.n, request.temperature, request.max_tokens) == (1, 0.2, 64)


def test_usage_is_estimated_and_adds_up() -> None:
    llm = ScriptedLLM([LYON, LYON, "bad", LYON])
    first = run(llm.structured(PROMPT, Place, n=2))
    second = run(llm.structured(PROMPT, Place, n=2))

    prompt = estimate_tokens(PROMPT[0]["content"])
    assert first.usage.prompt_tokens == prompt  # once per request, like native n
    assert first.usage.requests == 1 and first.usage.completion_tokens > 0
    assert first.usage + second.usage == llm.usage
    assert llm.usage.cached_requests == 0 and llm.usage != Usage()


def test_running_out_of_script_is_a_test_error() -> None:
    llm = ScriptedLLM([LYON])
    with pytest.raises(ScriptError, match="asked for 2 sample"):
        run(llm.structured(PROMPT, Place, n=2))
