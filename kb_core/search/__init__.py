"""Retrieval over the knowledge base."""

from kb_core.search.vector import vector_search

__all__ = ["vector_search"]
