"""What an answer is: the validated reply (:class:`BotAnswer`), the numbered sources it
may cite (:class:`Source`) and the result of generation (:class:`GeneratedAnswer`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kb_core.models import SearchHit

Mode = Literal["llm", "extractive"]
# Why the extractive mode answered: no LLM configured, the LLM failed, or its answer was
# not valid (not JSON, wrong schema, no known source behind a claimed answer).
FallbackReason = Literal["no_llm", "llm_error", "invalid_output"]

MAX_RECOMMENDATIONS = 8
MAX_RECOMMENDATION_CHARS = 1000
MAX_DRAFT_CHARS = 6000
_SOURCE_ID = re.compile(r"^\[?\s*S?\s*(\d+)\s*\]?$", re.IGNORECASE)


def source_id(position: int) -> str:
    """The id of the ``position``-th (0-based) passage in a prompt: S1, S2, …"""
    return f"S{position + 1}"


def normalize_source_id(value: str) -> str:
    """«S2», «s2», «[S2]», «2» → «S2»; anything else is kept as given (and later dropped)."""
    match = _SOURCE_ID.match(value.strip())
    return f"S{int(match.group(1))}" if match else value.strip()


class BotAnswer(BaseModel):
    """The answer to one ticket, in the JSON shape the LLM is asked for."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    answered: bool = Field(
        default=True, description="Whether the sources answer the question at all."
    )
    category: str = Field(min_length=1, max_length=200)
    recommendations: list[str] = Field(default_factory=list)  # for the agent
    draft_reply: str = Field(min_length=1, max_length=MAX_DRAFT_CHARS)  # to the user, Russian
    source_ids: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)

    @field_validator("recommendations", mode="before")
    @classmethod
    def _recommendations(cls, value: Any) -> Any:
        if isinstance(value, str):  # one recommendation as a bare string
            value = [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip()[:MAX_RECOMMENDATION_CHARS] for item in value if item.strip()]
            return items[:MAX_RECOMMENDATIONS]
        return value

    @field_validator("source_ids", mode="before")
    @classmethod
    def _source_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            out: list[str] = []
            for item in value:
                if isinstance(item, bool) or not isinstance(item, str | int):
                    raise ValueError("source ids must be strings")
                normalized = normalize_source_id(str(item))
                if normalized not in out:
                    out.append(normalized)
            return out
        return value


@dataclass(frozen=True)
class Source:
    """A search hit as a numbered passage of the context (``id``: S1, S2, …)."""

    id: str
    hit: SearchHit
    text: str  # the passage as the prompt holds it (may be cut to fit the context)
    quotes: tuple[str, ...] = ()  # extractive mode: its sentences most relevant to the question


@dataclass(frozen=True)
class GeneratedAnswer:
    """An answer, how it was made and from which sources."""

    mode: Mode
    answer: BotAnswer
    sources: tuple[Source, ...]  # the hits used as context, in rank order
    fallback_reason: FallbackReason | None = None  # set in extractive mode
    detail: str | None = None  # what went wrong with the LLM (for logs; never shown)
    flags: tuple[str, ...] = ()  # output checks that changed the answer (links_removed)

    @property
    def hits(self) -> tuple[SearchHit, ...]:
        return tuple(source.hit for source in self.sources)

    @property
    def cited(self) -> tuple[Source, ...]:
        """The sources the answer cites, in the answer's order."""
        by_id = {source.id: source for source in self.sources}
        return tuple(by_id[i] for i in self.answer.source_ids if i in by_id)
