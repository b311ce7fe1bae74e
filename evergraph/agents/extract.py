"""The extractor agent: one structured request per chunk, n samples, measured confidence.

**Cost.** Each chunk costs ONE structured call asking for n samples (`llm.structured(n=...)`):
on vLLM or OpenAI that is one HTTP request whose prompt is processed once; a server that ignores
`n` (llama.cpp) is topped up with repeats by the LLM layer. Graphiti spends several calls per
document (entities, edges, dedup, dates); here entity resolution and conflicts are settled by
code in `graph/`, so a document costs as many calls as it has chunks (one for an abstract).

**Confidence (MedKGent-style, rules in `extract_rules`).**

- *agreement* = samples proposing the triple / samples **requested**. Not / valid samples: a
  sample malformed (or cut off before any complete relation) is a draw that did not state the
  triple. Dividing by valid samples would give a triple proposed by the one surviving sample
  of five an agreement of 1.0, so confidence would rise as the model failed more often.
- *keep* a triple only if agreement >= `min_agreement` (default 0.4: 2 of 5). One sample's
  proposal is what a single-shot extractor keeps, and it is where a small model's one-off
  inventions live; two independent draws agreeing filters most of them while keeping recall
  for facts the text states plainly (measured in `benchmarks/eval_text2kg.py`).
- *confidence* = min(agreement, `confidence_cap`) (default 0.95). Samples of one model on one
  text measure the model's consistency, not the truth; the cap keeps every single-document
  fact below certainty, so the constructor's noisy-OR over independent sources can still
  raise it. With n = 1 nothing is measured: every kept triple gets the cap.

**Failures.** A chunk for which no sample is valid after the LLM layer's retries adds to
`rejected["chunks_failed"]` and yields nothing; the rest of the document still counts. Dropped
samples are counted under `samples_cut_off` / `samples_invalid`; a sample cut off at max_tokens
keeps the relations it completed (`llm.partial`, counted under `samples_cut_off_kept`). These
four keys count chunks and samples; every other key of `rejected` counts distinct triples
(`extract_rules.Reason`). A server that is down is not a chunk failure: the `ServiceError`
stops the batch, to resume.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from evergraph.agents.extract_rules import (
    MAX_ENTITIES,
    MAX_RELATIONS,
    MAX_TAGS,
    ChunkOut,
    EntitiesOut,
    Judged,
    Rules,
    judge,
    output_model,
)
from evergraph.config import ExtractSettings
from evergraph.errors import OutputValidationError
from evergraph.graph.candidates import DocumentExtraction, Mention
from evergraph.graph.models import Chunk
from evergraph.graph.schema import GraphSchema
from evergraph.llm.base import LLM, Message, Samples

CHUNKS_FAILED = "chunks_failed"
SAMPLES_CUT_OFF = "samples_cut_off"
SAMPLES_INVALID = "samples_invalid"
SAMPLES_SALVAGED = "samples_cut_off_kept"  # cut off, their complete items kept
NOT_TRIPLES = frozenset({CHUNKS_FAILED, SAMPLES_CUT_OFF, SAMPLES_INVALID, SAMPLES_SALVAGED})

SYSTEM = (
    "You build a knowledge graph from a text. List the entities the text names and the "
    "relations between them that the text states. Copy names exactly as the text writes them. "
    "For each relation give the subject, the predicate, the object (an entity name, or a value "
    "such as a number or a date) and a quote: the words of the text that state it, copied "
    f"exactly. At most {MAX_ENTITIES} entities and {MAX_RELATIONS} relations: the clearest "
    "ones. Never add facts the text does not state."
)
# A schema of entity types alone asks for concepts, not relations (`extract_rules.EntitiesOut`).
TAG_SYSTEM = (
    "You tag the concepts a text names. List the entities of the types below that the text "
    "names: the specific ones (a named object, instrument or data set) and the general ones (a "
    "property, a method, a field). Copy each name exactly as the text writes it. At most "
    f"{MAX_TAGS}, in the order the text names them. Never add a concept the text does not name."
)


@dataclass(frozen=True)
class ExtractOptions:
    samples: int = 5
    rules: Rules = field(default_factory=Rules)
    max_tokens: int = 512

    @classmethod
    def from_settings(cls, s: ExtractSettings, *, samples: int | None = None) -> ExtractOptions:
        return cls(
            samples=samples or s.samples,
            rules=Rules(s.min_agreement, s.confidence_cap, s.quote_match),
            max_tokens=s.max_tokens,
        )


def describe_schema(schema: GraphSchema) -> str:
    """The schema as the prompt shows it: types, then relations as `name (domain -> range)`."""
    lines = []
    if schema.entity_types:
        lines.append("Entity types (use only these): " + ", ".join(schema.entity_types) + ".")
        described = ((t, schema.type_descriptions.get(t)) for t in schema.entity_types)
        lines += [f"- {t}: {d}" for t, d in described if d]
    else:
        lines.append("Entity types: short nouns of your choice, e.g. Person, Method, Place.")
    if schema.relations:
        lines.append("Predicates (use only these; subject type -> object type):")
        for r in schema.relations:
            target = "a value" if r.range == "literal" else r.range or "any"
            arrow = f" ({r.domain or 'any'} -> {target})"
            lines.append(f"- {r.name}{arrow}" + (f": {r.description}" if r.description else ""))
    elif not schema.entity_types:
        lines.append("Predicates: short verbs in snake_case, e.g. uses, located_in.")
    return "\n".join(lines)


class ExtractState(TypedDict):
    """The node's input: one document's chunks."""

    source_id: str
    chunks: list[Chunk]


class ExtractUpdate(TypedDict):
    extraction: DocumentExtraction


class Extractor:
    """Proposes with the LLM, disposes with `extract_rules.judge`.

    Call `document(...)` directly, or use the instance as a LangGraph node over
    `ExtractState` (it returns `{"extraction": DocumentExtraction}`).
    """

    def __init__(
        self,
        llm: LLM,
        schema: GraphSchema | None = None,
        options: ExtractOptions | None = None,
    ) -> None:
        self.llm = llm
        self.schema = schema or GraphSchema()
        self.options = options or ExtractOptions()
        self._schema_text = describe_schema(self.schema)
        self._output = output_model(self.schema)
        self._system = TAG_SYSTEM if issubclass(self._output, EntitiesOut) else SYSTEM

    def messages(self, text: str) -> list[Message]:
        return [
            {"role": "system", "content": f"{self._system}\n\n{self._schema_text}"},
            {"role": "user", "content": f"Text:\n{text}"},
        ]

    async def sample(self, text: str) -> Samples[ChunkOut]:
        """The one structured call for a chunk: n samples in one request."""
        return await self.llm.structured(
            self.messages(text),
            self._output,
            n=self.options.samples,
            max_tokens=self.options.max_tokens,
        )

    def judge(self, samples: Sequence[ChunkOut], chunk: Chunk, *, requested: int) -> Judged:
        return judge(
            samples,
            requested,
            text=chunk.text,
            chunk_id=chunk.id,
            schema=self.schema,
            rules=self.options.rules,
        )

    async def document(self, source_id: str, chunks: Sequence[Chunk]) -> DocumentExtraction:
        """Extract every chunk of a document (concurrently; the LLM bounds the requests)."""
        drawn = await asyncio.gather(*(self._sample_or_fail(c.text) for c in chunks))
        rejected: Counter[str] = Counter()
        result = DocumentExtraction(
            source_id=source_id, samples=self.options.samples, model=self.llm.model
        )
        mentions: dict[tuple[str, str], Mention] = {}
        for chunk, samples in zip(chunks, drawn, strict=True):
            if samples is None:
                rejected[CHUNKS_FAILED] += 1
                continue
            rejected[SAMPLES_CUT_OFF] += samples.dropped_length
            rejected[SAMPLES_INVALID] += samples.dropped_invalid
            rejected[SAMPLES_SALVAGED] += samples.salvaged_length
            result.prompt_tokens += samples.usage.prompt_tokens
            result.completion_tokens += samples.usage.completion_tokens
            result.requests += samples.usage.requests
            judged = self.judge(samples.values, chunk, requested=samples.requested)
            result.facts += judged.facts
            rejected.update(judged.rejected)
            for m in judged.mentions:
                mentions.setdefault((m.name.casefold(), m.type), m)
        result.mentions = list(mentions.values())
        result.rejected = {k: v for k, v in sorted(rejected.items()) if v}
        return result

    async def __call__(self, state: ExtractState) -> ExtractUpdate:
        return {"extraction": await self.document(state["source_id"], state["chunks"])}

    async def _sample_or_fail(self, text: str) -> Samples[ChunkOut] | None:
        try:
            return await self.sample(text)
        except OutputValidationError:
            return None


def triples_rejected(extraction: DocumentExtraction) -> int:
    """Distinct triples rejected (leaving out the chunk and sample counts)."""
    return sum(v for k, v in extraction.rejected.items() if k not in NOT_TRIPLES)
