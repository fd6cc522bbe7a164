"""Ticket categories: the taxonomy, and a classifier that works without an LLM."""
