"""Evaluation harness: golden sets, retrieval metrics, RAGAS, reports (being built)."""
