"""Answering a job: fetch the ticket, search the active index, generate, post, record.

The worker knows neither FastAPI nor Dagster: ``kb serve`` runs it in a thread next to
the API, ``kb worker`` alone. Posting is the one step that must not repeat: the comment
carries the job's marker, and a retried job (after a crash between posting and marking
it done) first looks for its own comment on the task and, if found, only records it.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import psycopg

from kb_core.bot import jobs, metrics
from kb_core.bot.category_field import CategoryField
from kb_core.bot.corrections import CorrectionFiling, file_correction
from kb_core.bot.jobs import Job
from kb_core.bot.query import build_query
from kb_core.categorize.classifier import Prediction, TicketClassifier
from kb_core.embeddings.base import Embedder
from kb_core.index.versions import VersionInfo, active_version
from kb_core.models import SearchHit
from kb_core.search import SearchOptions, SearchScope, search
from kb_core.sources.pyrus_tasks import TicketFields, comment_history

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the answering step produced, ready to post."""

    formatted_text: str
    mode: str  # llm | extractive
    category: str | None
    confidence: float | None
    answer: dict[str, Any]  # structured answer, recorded with the interaction
    note: str = ""  # why extractive mode was used, if it was
    category_method: str | None = None  # llm | knn | knn+keywords | keywords | fallback
    category_confidence: float | None = None


class Answerer(Protocol):
    def __call__(
        self, question: str, hits: list[SearchHit], prediction: Prediction | None = None
    ) -> Reply: ...


class PyrusPort(Protocol):
    def get_task(self, task_id: int) -> dict[str, Any]: ...

    def post_comment(
        self, task_id: int, *, formatted_text: str | None = None, **extra: Any
    ) -> dict[str, Any]: ...

    def get_form(self, form_id: int) -> dict[str, Any]: ...

    def create_task(
        self, form_id: int, fields: list[dict[str, Any]], *, text: str | None = None
    ) -> dict[str, Any]: ...


@dataclass
class BotContext:
    pyrus: PyrusPort
    embedder: Embedder
    search_options: SearchOptions
    scrub: Callable[[str], str]
    answer: Answerer
    fields: TicketFields
    bot_ids: Collection[int]
    category_field: CategoryField | None = None
    classifier: TicketClassifier | None = None
    corrections: CorrectionFiling | None = None
    form_scopes: Mapping[int, SearchScope] = field(default_factory=dict)  # issue 24


def job_marker(job: Job) -> str:
    """Written into the comment, so a retried job can find its own answer."""
    return f"kb#{job.id}"


def _posted_comment_id(task: dict[str, Any], job: Job, bot_ids: Collection[int]) -> int | None:
    marker = job_marker(job)
    for comment in comment_history(task):
        if comment.is_bot(bot_ids) and marker in comment.text:
            return comment.id
    return None


@dataclass(frozen=True)
class Outcome:
    comment_id: int | None
    mode: str
    already_posted: bool
    total_ms: float


def process_job(conn: psycopg.Connection[Any], job: Job, ctx: BotContext) -> Outcome:
    started = time.perf_counter()
    task = ctx.pyrus.get_task(job.task_id)
    existing = _posted_comment_id(task, job, ctx.bot_ids)
    if existing is not None:
        log.info("job %s: comment %s was already posted; not posting again", job.id, existing)
        return Outcome(existing, "already_posted", True, 0.0)
    if job.trigger == "correction":
        return _file_correction(conn, job, ctx, task, started)
    query = ctx.scrub(build_query(task, job.trigger, ctx.fields, ctx.bot_ids))
    version = active_version(conn, ctx.search_options.namespace)
    t0 = time.perf_counter()
    scope = ctx.form_scopes.get(int(task.get("form_id") or 0))
    options = replace(ctx.search_options, version=version.id, scope=scope)
    hits = search(conn, ctx.embedder, query, options)
    retrieval_s = time.perf_counter() - t0
    metrics.RETRIEVAL_SECONDS.observe(retrieval_s)
    t1 = time.perf_counter()
    prediction = _categorize(conn, ctx, query, version)
    reply = ctx.answer(query, hits, prediction)
    generation_s = time.perf_counter() - t1
    if reply.note:
        log.warning("job %s: extractive answer (%s)", job.id, reply.note)
    field_updates = ctx.category_field.updates(task, reply.category) if ctx.category_field else []
    posted = ctx.pyrus.post_comment(
        job.task_id,
        formatted_text=f"{reply.formatted_text}<p><i>{job_marker(job)}</i></p>",
        field_updates=field_updates or None,
    )
    comment_id = _posted_comment_id(posted, job, ctx.bot_ids) if "comments" in posted else None
    total_s = time.perf_counter() - started
    conn.execute(
        """
        INSERT INTO bot_interactions (job_id, task_id, trigger, index_version, query, retrieved,
                                      answer, mode, category, confidence, comment_id,
                                      retrieval_ms, generation_ms, total_ms, category_method,
                                      category_confidence)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            job.id,
            job.task_id,
            job.trigger,
            version.id,
            query,
            json.dumps(
                [
                    {
                        "doc_id": h.document_id,
                        "chunk_id": h.chunk_id,
                        "source": h.source,
                        "external_id": h.external_id,
                        "score": round(h.score, 6),
                    }
                    for h in hits
                ]
            ),
            json.dumps(reply.answer, ensure_ascii=False),
            reply.mode,
            reply.category,
            reply.confidence,
            comment_id,
            retrieval_s * 1000,
            generation_s * 1000,
            total_s * 1000,
            reply.category_method,
            reply.category_confidence,
        ),
    )
    metrics.ANSWERS.labels(reply.mode).inc()
    metrics.JOB_SECONDS.observe(total_s)
    return Outcome(comment_id, reply.mode, False, total_s * 1000)


def _categorize(
    conn: psycopg.Connection[Any], ctx: BotContext, query: str, version: VersionInfo
) -> Prediction | None:
    """The classifier's category (nearest labelled tickets of the active version)."""
    if ctx.classifier is None:
        return None
    matches = version.embedding_model in (None, ctx.embedder.model_id)
    return ctx.classifier.predict(
        conn,
        query,
        ctx.embedder.embed_query(query) if matches else None,
        model_id=ctx.embedder.model_id,
        dimension=ctx.embedder.dimension,
        version=version,
    )


def _file_correction(
    conn: psycopg.Connection[Any], job: Job, ctx: BotContext, task: dict[str, Any], started: float
) -> Outcome:
    """A correction job: file the «Актуализация RAG» task, tell the agent where it is."""
    if ctx.corrections is None:
        raise RuntimeError("correction job, but the bot has no corrections configuration")
    filing = ctx.corrections
    filed = file_correction(
        conn,
        ctx.pyrus,
        filing,
        job_id=job.id,
        task=task,
        comment_id=job.comment_id,
        ticket_fields=ctx.fields,
    )
    if filed.correction_task_id is None:
        note = filing.texts.correction_not_filed
    else:
        url = filing.task_url.format(id=filed.correction_task_id)
        note = filing.texts.correction_filed.format(url=url)
    posted = ctx.pyrus.post_comment(
        job.task_id,
        formatted_text=f"<p>{html.escape(note)}</p><p><i>{job_marker(job)}</i></p>",
    )
    comment_id = _posted_comment_id(posted, job, ctx.bot_ids) if "comments" in posted else None
    metrics.CORRECTIONS.labels(filed.reason if filed.correction_task_id else "not_filed").inc()
    return Outcome(comment_id, "correction", False, (time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class WorkerConfig:
    lease_s: float = 900.0
    poll_s: float = 1.0
    max_attempts: int = 5
    backoff_s: float = 30.0


@contextmanager
def _lease_kept(
    connect: Callable[[], Any], job: Job, worker: str, lease_s: float
) -> Iterator[None]:
    """Renew the job's lease while it is being answered (an LLM may take minutes), so
    only a dead worker's job is ever taken over."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease_s / 3):
            try:
                with connect() as conn:
                    jobs.renew_lease(conn, job, worker, lease_s)
            except psycopg.Error as exc:
                log.warning("job %s: lease not renewed (%s)", job.id, exc)

    thread = threading.Thread(target=renew, name=f"kb-lease-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def run_worker(
    connect: Callable[[], Any],
    context: Callable[[], BotContext],
    stop: threading.Event,
    config: WorkerConfig,
    *,
    name: str | None = None,
) -> None:
    """Claim and answer jobs until ``stop`` is set. ``connect`` gives a connection context
    manager (autocommit); ``context`` builds the clients once, lazily."""
    worker = name or f"{socket.gethostname()}:{threading.get_native_id()}"
    ctx: BotContext | None = None
    log.info("bot worker %s started", worker)
    while not stop.is_set():
        try:
            with connect() as conn:
                job = jobs.claim(conn, worker, config.lease_s)
                if job is None:
                    stop.wait(config.poll_s)
                    continue
                try:
                    ctx = ctx or context()
                    with _lease_kept(connect, job, worker, config.lease_s):
                        outcome = process_job(conn, job, ctx)
                except Exception as exc:  # any failure: retry later, finally dead-letter
                    error = f"{type(exc).__name__}: {exc}"
                    status = jobs.fail(
                        conn,
                        job,
                        error,
                        max_attempts=config.max_attempts,
                        backoff_s=config.backoff_s,
                    )
                    metrics.JOBS.labels("dead" if status == "dead" else "retry").inc()
                    log.error(
                        "job %s (task %s) failed, now %s: %s", job.id, job.task_id, status, error
                    )
                    continue
                jobs.complete(conn, job)
                metrics.JOBS.labels("done").inc()
                log.info(
                    "job %s (task %s): answered, mode %s, %.0f ms",
                    job.id,
                    job.task_id,
                    outcome.mode,
                    outcome.total_ms,
                )
        except psycopg.OperationalError as exc:
            log.error("bot worker: database unavailable (%s); retrying", exc)
            stop.wait(max(config.poll_s, 2.0))
    log.info("bot worker %s stopped", worker)
