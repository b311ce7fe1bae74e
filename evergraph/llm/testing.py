"""Test double of the `LLM` protocol for unit tests of agents — not a product feature.

`ScriptedLLM` answers from a script instead of a model, but validates, drops and retries
through the same `sample_valid` as `OpenAICompatLLM`, so an agent tested against it sees the
real client's behaviour on invalid or cut-off output.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel

from evergraph.llm.base import Message, Samples, Usage
from evergraph.llm.cache import RawChoice
from evergraph.llm.openai_compat import Draw, sample_valid

T = TypeVar("T", bound=BaseModel)

ScriptFn: TypeAlias = Callable[[list[Message], type[BaseModel], int], list[str]]
Scripted: TypeAlias = str | Mapping[str, Any] | RawChoice | ScriptFn
"""One script entry: a JSON string, a dict (sent as JSON), a `RawChoice` (to script e.g. a
`finish_reason` of "length"), or a callable that answers a whole request with its samples."""


@dataclass(frozen=True)
class ScriptedRequest:
    """What the double received, one per request (retries included), for assertions."""

    messages: list[Message]
    schema: type[BaseModel]
    n: int
    temperature: float | None
    max_tokens: int | None


class ScriptError(AssertionError):
    """The script does not fit the requests: too few answers, or a callable among n."""


def estimate_tokens(text: str) -> int:
    """About four characters a token: enough to check that usage adds up."""
    return max(1, len(text) // 4) if text else 0


class ScriptedLLM:
    """TEST DOUBLE: an `LLM` whose answers are scripted.

    Each request with n samples takes the next n string/dict/`RawChoice` entries, or a single
    callable entry that returns all of that request's samples. Usage counts one request and
    the prompt once per request (like native `n`), with `estimate_tokens`.
    """

    def __init__(
        self,
        script: Iterable[Scripted],
        *,
        model: str = "scripted",
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.requests: list[ScriptedRequest] = []
        self._script: deque[Scripted] = deque(script)
        self._max_retries = max_retries
        self._usage = Usage()

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def remaining(self) -> int:
        """Script entries not used yet; a test can assert the code used them all."""
        return len(self._script)

    async def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Samples[T]:
        async def draw(prompt: list[Message], k: int) -> Draw:
            self.requests.append(ScriptedRequest(list(prompt), schema, k, temperature, max_tokens))
            choices = self._answer(prompt, schema, k)
            usage = Usage(
                prompt_tokens=estimate_tokens("".join(m["content"] for m in prompt)),
                completion_tokens=sum(estimate_tokens(c.content or "") for c in choices),
                requests=1,
            )
            self._usage = self._usage + usage
            return Draw(choices, usage)

        return await sample_valid(
            draw, messages, schema, n=n, max_retries=self._max_retries, model=self.model
        )

    def _answer(self, prompt: list[Message], schema: type[BaseModel], n: int) -> list[RawChoice]:
        head = self._script[0] if self._script else None
        if callable(head):
            self._script.popleft()
            return [RawChoice(content=text) for text in head(prompt, schema, n)]
        if len(self._script) < n:
            raise ScriptError(
                f"a request asked for {n} sample(s) but {len(self._script)} scripted answer(s) "
                f"are left (requests so far: {len(self.requests)})"
            )
        return [_choice(self._script.popleft()) for _ in range(n)]


def _choice(entry: Scripted) -> RawChoice:
    if isinstance(entry, RawChoice):
        return entry
    if isinstance(entry, str):
        return RawChoice(content=entry)
    if isinstance(entry, Mapping):
        return RawChoice(content=json.dumps(entry))
    raise ScriptError("a callable entry must answer a whole request on its own")
