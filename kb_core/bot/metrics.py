"""Prometheus metrics of the bot (served at /metrics by bot_api)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "kb_bot_webhooks_total",
    "Webhooks received, by outcome (queued, duplicate, ignored, bad_signature, bad_request, "
    "too_large).",
    ["outcome"],
)
JOBS = Counter("kb_bot_jobs_total", "Jobs finished, by outcome (done, retry, dead).", ["outcome"])
JOB_SECONDS = Histogram(
    "kb_bot_job_seconds",
    "Time from claiming a job to posting the comment.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
RETRIEVAL_SECONDS = Histogram(
    "kb_bot_retrieval_seconds",
    "Hybrid retrieval time of one job (query embedding included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LLM_ERRORS = Counter(
    "kb_bot_llm_errors_total",
    "Answers that fell back to extractive mode because the LLM failed or answered invalidly.",
)
ANSWERS = Counter("kb_bot_answers_total", "Comments posted, by generation mode.", ["mode"])
CORRECTIONS = Counter(
    "kb_bot_corrections_total",
    "Corrections of bot answers filed for approval, by how the agent asked "
    "(mention | field), or not_filed when the corrections form is not configured.",
    ["reason"],
)
SENDS = Counter(
    "kb_bot_sends_total",
    "Send commands of agents, by result (sent, already_sent, no_draft, no_channel).",
    ["result"],
)
