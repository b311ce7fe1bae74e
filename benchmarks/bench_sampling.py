"""n samples in one request vs n separate requests, against one sample as the baseline.

Why: extraction confidence comes from agreement across n samples (DESIGN.md, principle 2);
asking for them in one request lets the server process the prompt once.

    .venv/bin/python benchmarks/bench_sampling.py --base-url http://127.0.0.1:8100/v1 \
        [--model qwen2.5-coder-0.5b] [--llamacpp-url http://127.0.0.1:8101/v1] [--n 5]

Targets for a server that honours n (vLLM): prompt tokens 1x instead of nx, wall time <= 2x
one sample. llama.cpp's server ignores n, so there "one request" returns one sample. The
response cache is off; one warm-up request first, so every variant finds the server (and
vLLM's prefix cache) equally warm. Prints figures and ratios; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from pydantic import BaseModel, Field

from evergraph.config import LLMSettings, SamplingMode, StructuredMode
from evergraph.errors import EvergraphError
from evergraph.llm.base import Message, Usage
from evergraph.llm.openai_compat import OpenAICompatLLM

TEXT = (
    "Marie Curie was born in Warsaw in 1867. She moved to Paris in 1891, where she studied "
    "physics at the Sorbonne. In 1903 she shared the Nobel Prize in Physics with Pierre Curie "
    "and Henri Becquerel; in 1911 she alone received the Nobel Prize in Chemistry."
)
PROMPT: list[Message] = [
    {"role": "system", "content": "You extract facts as subject-predicate-object triples."},
    {"role": "user", "content": f"Extract up to three facts from this text:\n\n{TEXT}"},
]


class Triple(BaseModel):
    subject: str
    predicate: str
    object: str


class Facts(BaseModel):
    triples: list[Triple] = Field(max_length=3)


@dataclass(frozen=True)
class Run:
    label: str
    valid: int
    requested: int
    usage: Usage
    seconds: float


async def measure(
    label: str, settings: LLMSettings, n: int, max_tokens: int, temperature: float
) -> Run:
    async with OpenAICompatLLM(settings, cache=None) as llm:
        t0 = time.perf_counter()
        try:
            samples = await llm.structured(
                PROMPT, Facts, n=n, temperature=temperature, max_tokens=max_tokens
            )
            valid = len(samples.values)
        except EvergraphError as e:  # report it and go on with the other variants
            print(f"  {label}: {e}")
            valid = 0
        return Run(label, valid, n, llm.usage, time.perf_counter() - t0)


async def bench(name: str, base: LLMSettings, args: argparse.Namespace) -> None:
    print(f"\n{name}: {base.base_url} model {base.model} ({base.structured_mode.value})")
    native = base.model_copy(update={"sampling_mode": SamplingMode.NATIVE})
    repeat = base.model_copy(
        update={"sampling_mode": SamplingMode.REPEAT, "max_concurrency": args.n}
    )
    await measure("warm-up", native, 1, args.max_tokens, args.temperature)
    runs = [
        await measure("1 sample (baseline)", native, 1, args.max_tokens, args.temperature),
        await measure(
            f"n={args.n} in one request", native, args.n, args.max_tokens, args.temperature
        ),
        await measure(
            f"{args.n} separate requests", repeat, args.n, args.max_tokens, args.temperature
        ),
    ]
    baseline, one, many = runs
    print(
        f"  {'variant':<26}{'valid':>8}{'requests':>10}{'prompt tok':>12}{'compl tok':>11}"
        f"{'wall s':>9}{'prompt x':>10}{'wall x':>8}"
    )
    for r in runs:
        print(
            f"  {r.label:<26}{f'{r.valid}/{r.requested}':>8}{r.usage.requests:>10}"
            f"{r.usage.prompt_tokens:>12}{r.usage.completion_tokens:>11}{r.seconds:>9.1f}"
            f"{prompt_ratio(r, baseline):>10.2f}{r.seconds / baseline.seconds:>8.2f}"
        )
    print(
        f"  one request vs one sample: prompt tokens {prompt_ratio(one, baseline):.2f}x "
        f"(target 1x), wall time {one.seconds / baseline.seconds:.2f}x (target <= 2x)\n"
        f"  one request vs separate requests: prompt tokens {prompt_ratio(one, many):.2f}x, "
        f"wall time {one.seconds / many.seconds:.2f}x"
    )


def prompt_ratio(a: Run, b: Run) -> float:
    return a.usage.prompt_tokens / max(b.usage.prompt_tokens, 1)


def settings(url: str, model: str, mode: StructuredMode, args: argparse.Namespace) -> LLMSettings:
    return LLMSettings(
        base_url=url,
        model=model,
        structured_mode=mode,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        timeout_s=600,
        max_retries=0,
        cache=False,
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base-url", required=True, help="a vLLM server's /v1 root")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--llamacpp-url", help="also run against a llama.cpp server, for comparison")
    ap.add_argument("--llamacpp-model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=150)
    ap.add_argument("--temperature", type=float, default=0.7)
    args = ap.parse_args()
    await bench("vLLM", settings(args.base_url, args.model, StructuredMode.JSON_SCHEMA, args), args)
    if args.llamacpp_url:
        llamacpp = settings(
            args.llamacpp_url, args.llamacpp_model, StructuredMode.JSON_OBJECT, args
        )
        await bench("llama.cpp", llamacpp, args)


if __name__ == "__main__":
    asyncio.run(main())
