"""Plain data records shared by sources, pipeline stages and search."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def sha256_text(*parts: str) -> str:
    """Stable content hash of one or more text parts (parts are separated, not concatenated)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceDocument:
    """One document as a source delivers it, before any processing."""

    source: str
    external_id: str
    title: str
    raw_format: str
    raw_body: str
    url: str | None = None
    updated_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return sha256_text(self.title, self.raw_format, self.raw_body)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's Markdown, small enough to embed and quote."""

    ordinal: int
    text: str
    heading_path: tuple[str, ...]


@dataclass(frozen=True)
class SyncCounts:
    """What a source sync changed in the documents table."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def total_live(self) -> int:
        return self.new + self.changed + self.unchanged


@dataclass(frozen=True)
class SearchHit:
    """One ranked chunk with enough context to show and cite it."""

    document_id: int
    chunk_id: int
    title: str
    score: float
    snippet: str
    heading_path: tuple[str, ...]
    url: str | None
    source: str
    external_id: str
    vector_score: float | None = None
    lexical_score: float | None = None
    boosts: dict[str, float] = field(default_factory=dict)
    version_id: int | None = None
    expansion: tuple[str, ...] = ()  # terms added to the query by the synonym dictionary
    # issue 23: what answer drafting and the LLM prompt need beyond the snippet — the
    # chunk's text with its lines (lists, paragraphs), the document's date and, for a
    # ticket, whether the customer confirmed the solution.
    text: str = ""
    updated_at: datetime | None = None
    solution_confirmed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.document_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "heading_path": list(self.heading_path),
            "url": self.url,
            "source": self.source,
            "external_id": self.external_id,
            "explain": {
                "vector_score": _rounded(self.vector_score),
                "lexical_score": _rounded(self.lexical_score),
                "boosts": self.boosts,
                "query_expansion": list(self.expansion),
                "final_score": round(self.score, 6),
                "index_version": self.version_id,
            },
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None
