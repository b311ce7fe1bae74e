"""One structured call for an agent's node, where "no valid output" is a result to act on
(refuse, skip a step), not an error to stop on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from evergraph.errors import OutputValidationError
from evergraph.llm.base import LLM, Message, Usage

T = TypeVar("T", bound=BaseModel)


async def call_once(
    llm: LLM, messages: list[Message], schema: type[T], *, max_tokens: int, temperature: float
) -> tuple[T | None, Usage]:
    """The first valid sample, or None when the model gave none. The client does not report
    the usage of a failed call, so it is estimated (4 characters a token, max_tokens out)."""
    try:
        samples = await llm.structured(
            messages, schema, max_tokens=max_tokens, temperature=temperature
        )
    except OutputValidationError:
        prompt = sum(len(m["content"]) for m in messages) // 4
        return None, Usage(prompt_tokens=prompt, completion_tokens=max_tokens, requests=1)
    return samples.values[0], samples.usage


@dataclass(frozen=True)
class NodeCall:
    """`call_once` bound to an agent's model and temperature: what each node calls."""

    llm: LLM
    temperature: float

    async def __call__(
        self, messages: list[Message], schema: type[T], max_tokens: int
    ) -> tuple[T | None, Usage]:
        return await call_once(
            self.llm, messages, schema, max_tokens=max_tokens, temperature=self.temperature
        )
