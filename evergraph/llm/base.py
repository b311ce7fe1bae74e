"""The LLM contract: typed structured output with n samples and counted usage.

Agents depend on this protocol only; `openai_compat.OpenAICompatLLM` is the real
implementation and `testing.ScriptedLLM` the unit-test double.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T", bound=BaseModel)

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


class Usage(BaseModel):
    """Tokens and requests; `cached_requests` were answered from the on-disk cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cached_requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            requests=self.requests + other.requests,
            cached_requests=self.cached_requests + other.cached_requests,
        )


class Samples(BaseModel, Generic[T]):
    """The valid samples of one structured call, and what was dropped on the way."""

    values: list[T] = Field(default_factory=list)
    requested: int
    dropped_length: int = 0  # cut off at max_tokens (finish_reason "length")
    dropped_invalid: int = 0  # not JSON, or not fitting the schema
    salvaged_length: int = 0  # cut off, complete leading items kept (`llm.partial.ItemLists`)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


class LLM(Protocol):
    model: str

    @property
    def usage(self) -> Usage:
        """Running total over every call made through this client."""
        ...

    async def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Samples[T]:
        """Ask for `n` samples that validate against `schema`.

        Invalid or cut-off samples are dropped and counted. Only when no sample is valid is
        the request retried, with the validation error fed back; after the configured
        retries `OutputValidationError` is raised.
        """
        ...
