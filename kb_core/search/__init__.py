"""Retrieval over the knowledge base: vector, lexical (BM25) and hybrid."""

from kb_core.search.hits import make_snippet
from kb_core.search.hybrid import (
    MODES,
    SearchOptions,
    options_from_settings,
    search,
)
from kb_core.search.scope import SearchScope

__all__ = [
    "MODES",
    "SearchOptions",
    "SearchScope",
    "make_snippet",
    "options_from_settings",
    "search",
]
