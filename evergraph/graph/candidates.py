"""What an extractor hands to the constructor: candidate facts with measured agreement.

The extractor (an agent, in `agents/`) proposes; the constructor (`graph/`) disposes. This
module is the boundary between them, so neither imports the other.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class Mention(BaseModel):
    """An entity as the text names it, before resolution to a stored entity."""

    name: str = Field(min_length=1)
    type: str = "Thing"
    aliases: list[str] = Field(default_factory=list)


class CandidateFact(BaseModel):
    """One triple that survived extraction checks, with its agreement across samples."""

    subject: Mention
    predicate: str = Field(min_length=1)
    object: Mention | None = None  # an entity ...
    object_value: str | None = None  # ... or a literal
    quote: str  # verbatim from the chunk
    chunk_id: str
    agreement: float = Field(ge=0.0, le=1.0)  # share of the n samples that proposed it
    confidence: float = Field(ge=0.0, le=1.0)  # agreement after the documented rules

    @model_validator(mode="after")
    def _one_object(self) -> CandidateFact:
        if (self.object is None) == (self.object_value is None):
            raise ValueError("a fact has exactly one of object (entity) or object_value")
        return self


class DocumentExtraction(BaseModel):
    """Everything extracted from one source document, ready to integrate in one transaction."""

    source_id: str
    facts: list[CandidateFact] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)  # entities, with or without facts
    rejected: dict[str, int] = Field(default_factory=dict)  # reason -> count
    samples: int = 0  # n samples requested per chunk
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # sent to the model server (answers from the response cache excluded)
