"""`LLM` over any OpenAI-compatible server (vLLM, llama.cpp's server, OpenAI).

The servers differ in two ways that matter here (see MODELS.md): how they are asked for JSON
that fits a schema (`StructuredMode`), and whether they honour `n` (`SamplingMode`). Both are
settings; `SamplingMode.AUTO` also detects a server that ignores `n` and remembers it.

`sample_valid` — validation, dropping and the retry with feedback — is shared with
`testing.ScriptedLLM`, so the test double drops and retries exactly like the real client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from evergraph.config import LLMSettings, SamplingMode, StructuredMode
from evergraph.errors import (
    ModelNotFoundError,
    OutputValidationError,
    ServiceError,
    UnreachableError,
    UsageError,
)
from evergraph.llm.base import Message, Samples, Usage
from evergraph.llm.cache import RawChoice, RawResponse, ResponseCache, request_key
from evergraph.llm.partial import salvage

T = TypeVar("T", bound=BaseModel)

SERVER_FIX = "start a local server with `evergraph model serve` or set EVERGRAPH_LLM__BASE_URL"
MODEL_FIX = "set EVERGRAPH_LLM__MODEL to one of the served models"

# Transient failures (connection reset, 429, 5xx) are retried by the openai client itself: it
# already backs off with jitter and honours Retry-After, so a second retry layer would only
# multiply the attempts. Kept small so a dead server fails within seconds. tenacity is used
# for the other kind of retry — invalid output — which needs a changed request.
TRANSPORT_RETRIES = 2

_MAX_ERROR_CHARS = 400


# --- validation, dropping and retry: shared with testing.ScriptedLLM --------------------------


@dataclass(frozen=True)
class Draw:
    """The raw choices of one or more requests made for one attempt, and what they cost."""

    choices: list[RawChoice]
    usage: Usage


DrawFn = Callable[[list[Message], int], Awaitable[Draw]]
"""Ask the model `n` times for an answer to `messages`."""


@dataclass
class _Checked(Generic[T]):
    values: list[T]
    dropped_length: int = 0
    dropped_invalid: int = 0
    salvaged: int = 0
    first_error: str = ""


class _NoValidSample(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _strip_fences(text: str) -> str:
    """Unwrap a ```json fence: servers that do not enforce the schema often add one."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3]
        if text.startswith("json"):
            text = text[4:]
    return text.strip()


def _describe(e: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
        for err in e.errors(include_url=False)[:5]
    )
    return problems[:_MAX_ERROR_CHARS]


def _check(choices: Sequence[RawChoice], schema: type[T]) -> _Checked[T]:
    checked: _Checked[T] = _Checked(values=[])
    for choice in choices:
        if choice.finish_reason == "length":
            kept = salvage(_strip_fences(choice.content or ""), schema)
            if kept is not None:
                checked.values.append(kept)
                checked.salvaged += 1
                continue
            checked.dropped_length += 1
            checked.first_error = checked.first_error or (
                "it was cut off at the token limit before the JSON was complete; answer briefly"
            )
            continue
        try:
            checked.values.append(schema.model_validate_json(_strip_fences(choice.content or "")))
        except ValidationError as e:
            checked.dropped_invalid += 1
            checked.first_error = checked.first_error or _describe(e)
    return checked


def feedback_message(error: str) -> Message:
    return {
        "role": "user",
        "content": f"Your previous answer was invalid: {error.rstrip('.')}. "
        "Answer again with JSON that fits the schema.",
    }


async def sample_valid(
    draw: DrawFn,
    messages: Sequence[Message],
    schema: type[T],
    *,
    n: int,
    max_retries: int,
    model: str,
) -> Samples[T]:
    """Draw `n` answers, keep those that validate against `schema`, count the rest.

    Only when no answer is valid is the draw repeated (up to `max_retries` times), with the
    first error fed back as an extra user message; the dropped counts and usage of a result
    include those earlier attempts.
    """
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    usage = Usage()
    dropped_length = dropped_invalid = salvaged = 0
    prompt = list(messages)
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(max_retries + 1),
            retry=retry_if_exception_type(_NoValidSample),
            reraise=True,
        ):
            with attempt:
                drawn = await draw(prompt, n)
                usage = usage + drawn.usage
                checked = _check(drawn.choices, schema)
                dropped_length += checked.dropped_length
                dropped_invalid += checked.dropped_invalid
                salvaged += checked.salvaged
                if not checked.values:
                    error = checked.first_error or "the server returned no answer"
                    prompt = [*messages, feedback_message(error)]
                    raise _NoValidSample(error)
                return Samples[T](
                    values=checked.values,
                    requested=n,
                    dropped_length=dropped_length,
                    dropped_invalid=dropped_invalid,
                    salvaged_length=salvaged,
                    usage=usage,
                    model=model,
                )
    except _NoValidSample as e:
        raise OutputValidationError(
            f"{model} gave no valid {schema.__name__} in {max_retries + 1} attempts "
            f"of {n} sample(s): {dropped_invalid} invalid, {dropped_length} cut off at the "
            f"token limit; last error: {e.error}",
            fix="raise EVERGRAPH_LLM__MAX_TOKENS if answers are cut off, simplify the schema, "
            "or use a larger model",
        ) from None
    raise AssertionError("unreachable: AsyncRetrying either returns or raises")


# --- what is sent ------------------------------------------------------------------------------


def schema_instruction(messages: Sequence[Message], schema: type[BaseModel]) -> list[Message]:
    """Tell the model the schema in the system prompt.

    Constrained decoding alone keeps the output well-formed, but small models fill the fields
    far better when they can read the field names and descriptions.
    """
    text = (
        "Answer with one JSON object that fits this JSON schema, and nothing else:\n"
        + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )
    if messages and messages[0]["role"] == "system":
        return [
            {"role": "system", "content": f"{messages[0]['content']}\n\n{text}"},
            *messages[1:],
        ]
    return [{"role": "system", "content": text}, *messages]


def response_format(schema: type[BaseModel], mode: StructuredMode) -> dict[str, Any]:
    json_schema = schema.model_json_schema()
    if mode is StructuredMode.JSON_OBJECT:  # llama.cpp's server
        return {"type": "json_object", "schema": json_schema}
    name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": json_schema, "strict": True},
    }


@dataclass(frozen=True)
class _Request:
    """One chat-completion request; with base_url and model it is also the cache key."""

    messages: list[Message]
    response_format: dict[str, Any]
    n: int
    temperature: float
    max_tokens: int
    seed: int | None


@dataclass(frozen=True)
class _LoopState:
    loop: asyncio.AbstractEventLoop
    limit: asyncio.Semaphore  # settings.max_concurrency requests in flight at most
    model_check: asyncio.Lock


# --- the client --------------------------------------------------------------------------------


class OpenAICompatLLM:
    """Structured n-sampling over an OpenAI-compatible chat-completions endpoint.

    `seed` is the base seed of sampled requests: sample i of a call is drawn with seed + i,
    so repeated single-sample requests differ from each other and runs are reproducible. vLLM
    seeds the i-th choice of a request with `n` the same way (seed + i), so both sampling modes
    draw the same samples.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        cache: ResponseCache | None,
        http_client: httpx.AsyncClient | None = None,
        seed: int = 0,
        transport_retries: int = TRANSPORT_RETRIES,
    ) -> None:
        self.model = settings.model
        self._settings = settings
        self._cache = cache
        self._seed = seed
        self._owns_http = http_client is None
        # openai 3 types `http_client` as httpx2.AsyncClient but accepts an httpx.AsyncClient.
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.timeout_s,
            max_retries=transport_retries,
            http_client=cast(Any, http_client),
        )
        self._usage = Usage()
        # REPEAT, or AUTO once the server was seen to ignore `n`: one request per sample.
        self._use_repeats = settings.sampling_mode is SamplingMode.REPEAT
        self._model_served = False  # checked once against GET /models, see _check_model
        self._loop_state: _LoopState | None = None

    @property
    def usage(self) -> Usage:
        return self._usage

    async def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Samples[T]:
        """See `LLM.structured`; `max_tokens` can only lower the configured cap."""
        settings = self._settings
        temperature = settings.temperature if temperature is None else temperature
        if n > 1 and temperature == 0:
            # vLLM rejects it, and greedy samples would agree by construction anyway
            raise UsageError(
                f"n={n} samples at temperature 0 would all be the same",
                fix="sample at a temperature above 0, or ask for n=1",
            )
        cap = settings.max_tokens if max_tokens is None else min(max_tokens, settings.max_tokens)
        fmt = response_format(schema, settings.structured_mode)

        async def draw(prompt: list[Message], k: int) -> Draw:
            return await self._draw(schema_instruction(prompt, schema), fmt, k, temperature, cap)

        return await sample_valid(
            draw, messages, schema, n=n, max_retries=settings.max_retries, model=self.model
        )

    async def models(self) -> list[str]:
        """The model names the server serves (GET /models)."""
        try:
            return await self._list_models()
        except openai.APIError as e:
            raise await self._translate(e) from e

    async def aclose(self) -> None:
        """Close the HTTP client, unless the caller passed one in (then it is theirs)."""
        if self._owns_http:
            await self._client.close()

    async def __aenter__(self) -> OpenAICompatLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- sampling ------------------------------------------------------------------------------

    async def _draw(
        self,
        messages: list[Message],
        fmt: dict[str, Any],
        n: int,
        temperature: float,
        max_tokens: int,
    ) -> Draw:
        def request(k: int, seed_offset: int) -> _Request:
            seed = self._seed + seed_offset if temperature > 0 else None
            return _Request(messages, fmt, k, temperature, max_tokens, seed)

        if n == 1 or not self._use_repeats:
            first, usage = await self._send(request(n, 0))
            got = len(first.choices)
            if got >= n or self._settings.sampling_mode is SamplingMode.NATIVE:
                return Draw(first.choices, usage)
            self._use_repeats = True  # AUTO: the server ignored n; go straight to repeats next time
            # It answered as if asked for one sample: file the answer under that request too,
            # so the next identical call, which goes straight to repeats, finds it cached.
            self._store(request(1, 0), first)
            rest = await self._repeat([request(1, i) for i in range(got, n)])
            return Draw(first.choices + rest.choices, usage + rest.usage)
        return await self._repeat([request(1, i) for i in range(n)])

    async def _repeat(self, requests: list[_Request]) -> Draw:
        """Send single-sample requests concurrently (the semaphore bounds them)."""
        sent = await asyncio.gather(*(self._send(r) for r in requests))
        return Draw(
            [c for response, _ in sent for c in response.choices],
            sum((usage for _, usage in sent), Usage()),
        )

    def _key(self, req: _Request) -> str:
        return request_key(
            {"base_url": self._settings.base_url, "model": self.model, **asdict(req)}
        )

    def _store(self, req: _Request, response: RawResponse) -> None:
        if self._cache is not None:
            self._cache.put(self._key(req), response)

    async def _send(self, req: _Request) -> tuple[RawResponse, Usage]:
        """One request, answered from the cache when possible; adds to the running usage."""
        if self._cache is not None:
            cached = self._cache.get(self._key(req))
            if cached is not None:
                usage = Usage(cached_requests=1)
                self._usage = self._usage + usage
                return cached, usage
        await self._check_model()
        try:
            async with self._loop().limit:
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    messages=cast(list[ChatCompletionMessageParam], req.messages),
                    response_format=cast(Any, req.response_format),
                    n=req.n,
                    temperature=req.temperature,
                    max_tokens=req.max_tokens,
                    seed=openai.omit if req.seed is None else req.seed,
                )
        except openai.APIError as e:
            raise await self._translate(e, max_tokens=req.max_tokens) from e
        raw = RawResponse(
            choices=[
                RawChoice(content=c.message.content, finish_reason=c.finish_reason)
                for c in sorted(completion.choices, key=lambda c: c.index)
            ],
            prompt_tokens=completion.usage.prompt_tokens if completion.usage else 0,
            completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
        )
        self._store(req, raw)
        usage = Usage(
            prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens, requests=1
        )
        self._usage = self._usage + usage
        return raw, usage

    def _loop(self) -> _LoopState:
        """asyncio primitives, made in the running loop (the client may be built outside one)."""
        loop = asyncio.get_running_loop()
        if self._loop_state is None or self._loop_state.loop is not loop:
            self._loop_state = _LoopState(
                loop, asyncio.Semaphore(self._settings.max_concurrency), asyncio.Lock()
            )
        return self._loop_state

    async def _check_model(self) -> None:
        """Fail fast when the server does not list the configured model.

        vLLM answers an unknown model with 404, but llama.cpp's server silently answers with
        whatever model it has loaded; one GET /models before the first request catches that.
        A server that cannot list its models is trusted.
        """
        if self._model_served:
            return
        async with self._loop().model_check:
            if self._model_served:
                return
            served = await self._served_models()
            if served and self.model not in served:
                raise self._model_not_found(served)
            self._model_served = True

    def _model_not_found(self, served: list[str]) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"the LLM server at {self._settings.base_url} does not serve model "
            f"{self.model!r}; it serves: {', '.join(served) or '(none)'}",
            fix=MODEL_FIX,
        )

    # --- errors --------------------------------------------------------------------------------

    async def _translate(self, e: openai.APIError, *, max_tokens: int = 0) -> ServiceError:
        """Turn the openai client's error into one message with its cause and fix."""
        url = self._settings.base_url
        if isinstance(e, openai.APITimeoutError):
            return ServiceError(
                f"the LLM server at {url} did not answer within {self._settings.timeout_s:g} s",
                fix=f"{SERVER_FIX}; or raise EVERGRAPH_LLM__TIMEOUT_S for slow servers",
            )
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e
            return UnreachableError(
                f"cannot reach the LLM server at {url}: {cause}", fix=SERVER_FIX
            )
        if isinstance(e, openai.AuthenticationError | openai.PermissionDeniedError):
            return ServiceError(
                f"the LLM server at {url} rejected the API key (HTTP {e.status_code})",
                fix="set EVERGRAPH_LLM__API_KEY to a key the server accepts",
            )
        message = _server_message(e)
        if isinstance(e, openai.NotFoundError):
            served = await self._served_models()
            if served is None:
                return ServiceError(
                    f"no OpenAI-compatible API at {url} (HTTP 404: {message})",
                    fix="set EVERGRAPH_LLM__BASE_URL to the API root, usually ending in /v1",
                )
            if self.model not in served:
                return self._model_not_found(served)
        if isinstance(e, openai.BadRequestError) and re.search(
            r"context length|context window|max_model_len", message
        ):
            return ServiceError(
                f"the request does not fit the context of {self.model} at {url} "
                f"(max_tokens={max_tokens}): {message}",
                fix="lower EVERGRAPH_LLM__MAX_TOKENS or shorten the input, "
                "or serve the model with a longer context",
            )
        status = e.status_code if isinstance(e, openai.APIStatusError) else "error"
        fix = None
        if (
            "json_schema" in message or "response_format" in message
        ) and self._settings.structured_mode is StructuredMode.JSON_SCHEMA:
            fix = "for a llama.cpp server set EVERGRAPH_LLM__STRUCTURED_MODE=json_object"
        return ServiceError(f"the LLM server at {url} answered HTTP {status}: {message}", fix=fix)

    async def _list_models(self) -> list[str]:
        async with self._loop().limit:
            page = await self._client.models.list()
        return sorted(m.id for m in page.data)

    async def _served_models(self) -> list[str] | None:
        """The served models, or None when the server is up but cannot list them."""
        try:
            return await self._list_models()
        except openai.APIStatusError:
            return None
        except openai.APIError as e:  # unreachable: no point in trying the chat request
            raise await self._translate(e) from e


def _server_message(e: openai.APIError) -> str:
    """The server's own error text on one line (llama.cpp's carries a traceback).

    The openai client has already unwrapped {"error": {...}} (vLLM, OpenAI) into `e.body`.
    """
    text = e.body.get("message") if isinstance(e.body, dict) else None
    return " ".join(str(text or e.message).split())[:_MAX_ERROR_CHARS]
