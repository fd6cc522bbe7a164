"""A retrieval candidate: a chunk, its document, and one retriever's score."""

from __future__ import annotations

from typing import NamedTuple


class Candidate(NamedTuple):
    chunk_id: int
    document_id: int
    score: float
