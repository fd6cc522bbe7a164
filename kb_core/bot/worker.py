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
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import psycopg

from kb_core.bot import jobs, metrics
from kb_core.bot.actions import latest_draft, record_action, send_draft
from kb_core.bot.category_field import CategoryField
from kb_core.bot.corrections import CorrectionFiling, file_correction
from kb_core.bot.jobs import Job
from kb_core.bot.ticket_text import (
    AttachmentPolicy,
    FileSource,
    read_ticket,
    search_query,
    select,
)
from kb_core.categorize.classifier import Prediction, TicketClassifier
from kb_core.effect.holdout import HoldoutPolicy, bot_stays_silent
from kb_core.effect.outcomes import category_from_task
from kb_core.embeddings.base import Embedder
from kb_core.index.versions import VersionInfo, active_version
from kb_core.models import SearchHit
from kb_core.search import SearchOptions, SearchScope, search
from kb_core.settings import BotSettings, defaults_of
from kb_core.sources.http import SourceHTTPError
from kb_core.sources.pyrus_tasks import TicketFields, comment_history
from kb_core.text.limits import clean_text, clean_tree, clip
from kb_core.texts import Texts

_BOT = defaults_of(BotSettings)

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


@dataclass(frozen=True)
class TicketReading:
    """How much of a ticket the bot reads (see kb_core.bot.ticket_text)."""

    max_chars: int = 4000  # ticket text in the prompt
    query_max_chars: int = 1200  # the search query
    attachments: AttachmentPolicy = field(default_factory=AttachmentPolicy)
    skip_codes: tuple[str, ...] = ()  # fields the bot writes or reads as commands


@dataclass(frozen=True)
class SendConfig:
    """The agent's command to send the draft: the words of the bot's one-line hint."""

    hint: str  # appended to every answer; "" for none
    texts: Texts


@dataclass
class BotContext:
    pyrus: PyrusPort
    embedder: Embedder
    search_options: SearchOptions
    scrub: Callable[[str], str]
    answer: Answerer
    fields: TicketFields
    bot_ids: Collection[int]  # every bot whose comments are excluded, this one included
    category_field: CategoryField | None = None
    classifier: TicketClassifier | None = None
    corrections: CorrectionFiling | None = None
    reading: TicketReading = field(default_factory=TicketReading)
    files: FileSource | None = None  # attachment downloads (None: names only)
    send: SendConfig | None = None
    max_input_chars: int = 20_000  # issue 20: longest ticket text scrubbed and searched
    holdout: HoldoutPolicy | None = None  # issue 22: tickets the bot sits out
    # issue 23: the query the knowledge base is searched with (LLM query optimisation)
    search_query: Callable[[str], str] | None = None
    # issue 25: who reads the bot's comments on each form (KB_PYRUS_FORM_GROUPS); a form
    # not listed is read by an unknown audience, shown only what everyone may read.
    form_audiences: Mapping[int, frozenset[str]] = field(default_factory=dict)
    form_scopes: Mapping[int, SearchScope] = field(default_factory=dict)  # issue 24


def audience(task: dict[str, Any], ctx: BotContext) -> frozenset[str]:
    """The groups that read comments on the task's form."""
    form = task.get("form_id")
    return ctx.form_audiences.get(int(form), frozenset()) if form is not None else frozenset()


def job_marker(job: Job) -> str:
    """Written into the comment, so a retried job can find its own answer."""
    return f"kb#{job.id}"


def has_marker(text: str, job: Job) -> bool:
    """Whether ``text`` carries this job's marker as a whole token: ``kb#116`` must not
    be found inside ``kb#1160`` (a later job on the same ticket)."""
    return re.search(rf"(?<![\w#]){re.escape(job_marker(job))}(?![\w#])", text) is not None


def _posted_comment_id(task: dict[str, Any], job: Job, bot_ids: Collection[int]) -> int | None:
    for comment in comment_history(task):
        if comment.is_bot(bot_ids) and has_marker(comment.text, job):
            return comment.id
    return None


# Attempts of the comment POST inside one job run; each one after an unclear failure
# first re-reads the task. Past them the job fails and is retried later (checking again).
POST_ATTEMPTS = 4


def post_exactly_once(
    ctx: BotContext, job: Job, formatted_text: str, **extra: Any
) -> dict[str, Any]:
    """Post the job's comment once, even when Pyrus stores it but the reply is lost.

    The comment POST is not idempotent, so the HTTP layer does not retry it after it may
    have arrived; here, before any new attempt, the task is read again and the job's own
    marker looked for. Returns the task as Pyrus answered (or as re-read)."""
    last: SourceHTTPError | None = None
    for attempt in range(1, POST_ATTEMPTS + 1):
        if last is not None:
            time.sleep(min(8.0, 2.0 ** (attempt - 2)))
            task = ctx.pyrus.get_task(job.task_id)
            if _posted_comment_id(task, job, ctx.bot_ids) is not None:
                log.info("job %s: the lost reply's comment is on the task; not posting", job.id)
                return task
        try:
            return ctx.pyrus.post_comment(job.task_id, formatted_text=formatted_text, **extra)
        except SourceHTTPError as exc:
            if not exc.ambiguous:
                raise
            log.warning("job %s: comment POST unclear (%s); checking before retrying", job.id, exc)
            last = exc
    assert last is not None
    raise last


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
    if bot_stays_silent(conn, job.task_id, job.trigger, ctx.holdout):
        log.info("job %s: ticket %s is in the holdout; nothing posted", job.id, job.task_id)
        return Outcome(None, "holdout", False, (time.perf_counter() - started) * 1000)
    if job.trigger == "send":
        return _send_draft(conn, job, ctx, task, started)
    # One reading of the whole ticket feeds both the search and the prompt. Control
    # characters never reach storage, and a huge ticket is clipped to what the scrubber
    # can take before the budget shapes it.
    ticket = read_ticket(
        task,
        ctx.fields,
        ctx.bot_ids,
        files=ctx.files,
        policy=ctx.reading.attachments,
        skip_codes=ctx.reading.skip_codes,
    )
    mention_id = job.comment_id if job.trigger == "mention" else None
    query = ctx.scrub(
        clip(
            clean_text(
                search_query(ticket, mention_id=mention_id, max_chars=ctx.reading.query_max_chars)
            ),
            ctx.max_input_chars,
        )
    )
    ticket_text = ctx.scrub(
        clip(
            clean_text(select(ticket, mention_id=mention_id, max_chars=ctx.reading.max_chars)),
            ctx.max_input_chars,
        )
    )
    version = active_version(conn, ctx.search_options.namespace)
    t0 = time.perf_counter()
    searched = ctx.search_query(query) if ctx.search_query is not None else query
    scope = ctx.form_scopes.get(int(task.get("form_id") or 0))
    options = replace(
        ctx.search_options, version=version.id, reader_groups=audience(task, ctx), scope=scope
    )
    hits = search(conn, ctx.embedder, searched, options)
    retrieval_s = time.perf_counter() - t0
    metrics.RETRIEVAL_SECONDS.observe(retrieval_s)
    t1 = time.perf_counter()
    prediction = _categorize(conn, ctx, query, version)
    reply = ctx.answer(ticket_text, hits, prediction)
    generation_s = time.perf_counter() - t1
    if reply.note:
        log.warning("job %s: extractive answer (%s)", job.id, reply.note)
    human_category = _human_category(task, ctx)
    field_updates: list[dict[str, Any]] = []
    if ctx.category_field is not None and human_category is None:
        field_updates = ctx.category_field.updates(task, reply.category)
    hint = f"<p>{html.escape(ctx.send.hint)}</p>" if ctx.send and ctx.send.hint else ""
    posted = post_exactly_once(
        ctx,
        job,
        f"{reply.formatted_text}{hint}<p><i>{job_marker(job)}</i></p>",
        field_updates=field_updates or None,
    )
    comment_id = _posted_comment_id(posted, job, ctx.bot_ids) if "comments" in posted else None
    total_s = time.perf_counter() - started
    conn.execute(
        """
        INSERT INTO bot_interactions (job_id, task_id, trigger, index_version, query, retrieved,
                                      answer, mode, category, confidence, comment_id,
                                      retrieval_ms, generation_ms, total_ms, category_method,
                                      category_confidence, human_category, category_written)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
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
            json.dumps(clean_tree(reply.answer), ensure_ascii=False),
            reply.mode,
            reply.category,
            reply.confidence,
            comment_id,
            retrieval_s * 1000,
            generation_s * 1000,
            total_s * 1000,
            reply.category_method,
            reply.category_confidence,
            human_category,
            bool(field_updates),
        ),
    )
    metrics.ANSWERS.labels(reply.mode).inc()
    metrics.JOB_SECONDS.observe(total_s)
    return Outcome(comment_id, reply.mode, False, total_s * 1000)


def _human_category(task: dict[str, Any], ctx: BotContext) -> str | None:
    """The category a person set on the ticket (the field's latest change was not a
    bot's, or it was filled with the form), which the bot must not overwrite."""
    if ctx.category_field is None or not ctx.category_field.code:
        return None
    found = category_from_task(task, ctx.category_field.code, ctx.bot_ids)
    return found[0] if found is not None and found[1] == "agent" else None


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
    posted = post_exactly_once(
        ctx, job, f"<p>{html.escape(note)}</p><p><i>{job_marker(job)}</i></p>"
    )
    comment_id = _posted_comment_id(posted, job, ctx.bot_ids) if "comments" in posted else None
    draft = latest_draft(conn, job.task_id)
    record_action(
        conn,
        job_id=job.id,
        task_id=job.task_id,
        action="corrected",
        interaction_id=draft.interaction_id if draft is not None else None,
    )
    metrics.CORRECTIONS.labels(filed.reason if filed.correction_task_id else "not_filed").inc()
    return Outcome(comment_id, "correction", False, (time.perf_counter() - started) * 1000)


def _send_draft(
    conn: psycopg.Connection[Any], job: Job, ctx: BotContext, task: dict[str, Any], started: float
) -> Outcome:
    """A send job: the latest draft to the customer (once), then a note for the agent."""
    result = send_draft(conn, ctx.pyrus, job_id=job.id, task=task, bot_ids=ctx.bot_ids)
    metrics.SENDS.labels(result.status).inc()
    if ctx.send is not None:
        texts = ctx.send.texts
        note = {
            "sent": texts.send_done,
            "already_sent": texts.send_already,
            "no_draft": texts.send_no_draft,
            "no_channel": texts.send_no_channel,
        }[result.status]
        post_exactly_once(ctx, job, f"<p>{html.escape(note)}</p><p><i>{job_marker(job)}</i></p>")
    log.info("job %s (task %s): send command, %s", job.id, job.task_id, result.status)
    return Outcome(result.comment_id, "send", False, (time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class WorkerConfig:
    # A minute: a killed worker's ticket is taken over within about that; the lease is
    # renewed every third of it while the worker lives, so a slow LLM never loses it.
    lease_s: float = _BOT["job_lease_s"]  # defaults of KB_BOT_*
    poll_s: float = _BOT["poll_s"]
    max_attempts: int = _BOT["max_attempts"]
    backoff_s: float = _BOT["retry_backoff_s"]
    db_backoff_max_s: float = 10.0  # longest wait between two tries of an unreachable DB


class WorkerHealth:
    """What ``/readyz`` and ``kb worker`` know about the worker threads: when each last
    went round its loop, and the job it holds (released on shutdown)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._current: dict[str, Job] = {}
        self.threads: list[threading.Thread] = []

    def beat(self, worker: str) -> None:
        with self._lock:
            self._beats[worker] = time.monotonic()

    def holding(self, worker: str, job: Job | None) -> None:
        with self._lock:
            if job is None:
                self._current.pop(worker, None)
            else:
                self._current[worker] = job

    def current(self) -> dict[str, Job]:
        with self._lock:
            return dict(self._current)

    def age_s(self) -> float | None:
        """Seconds since the least recent beat of a worker (None before any)."""
        with self._lock:
            if not self._beats:
                return None
            return time.monotonic() - min(self._beats.values())

    def alive(self) -> bool:
        return bool(self.threads) and all(t.is_alive() for t in self.threads)

    def join(self, timeout: float) -> None:
        """Wait for the threads (after ``stop`` was set), ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def problem(self, stale_after_s: float) -> str | None:
        """Why the worker is not healthy, or None."""
        if not self.alive():
            return "worker thread is not running"
        age = self.age_s()
        if age is not None and age > stale_after_s:
            return f"worker has not polled for {age:.0f} s"
        return None


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
            except Exception as exc:  # the database may be restarting: try next time
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
    health: WorkerHealth | None = None,
) -> None:
    """Claim and answer jobs until ``stop`` is set. ``connect`` gives a connection context
    manager (autocommit); ``context`` builds the clients once, lazily.

    Nothing but ``stop`` ends the loop: any error outside a job (the database down or
    restarting, a failed reconnect, whatever raises) is logged and tried again with a
    capped exponential back-off, so a database restart never silently stops the bot."""
    worker = name or f"{socket.gethostname()}:{threading.get_native_id()}"
    ctx: BotContext | None = None
    failures = 0
    outbox_due = 0.0
    log.info("bot worker %s started", worker)
    while not stop.is_set():
        if health is not None:
            health.beat(worker)
        try:
            with connect() as conn:
                job = jobs.claim(conn, worker, config.lease_s)
                failures = 0
                if job is None:
                    if time.monotonic() >= outbox_due:
                        outbox_due = time.monotonic() + OUTBOX_EVERY_S
                        ctx = _file_feedback_outbox(conn, ctx, context)
                    stop.wait(config.poll_s)
                    continue
                if health is not None:
                    health.holding(worker, job)
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
                finally:
                    if health is not None:
                        health.holding(worker, None)
                jobs.complete(conn, job)
                metrics.JOBS.labels("done").inc()
                log.info(
                    "job %s (task %s): answered, mode %s, %.0f ms",
                    job.id,
                    job.task_id,
                    outcome.mode,
                    outcome.total_ms,
                )
        except Exception as exc:  # the database (or its connection) failed: wait, retry
            failures += 1
            delay = min(config.db_backoff_max_s, max(config.poll_s, 0.5 * 2 ** (failures - 1)))
            log.error(
                "bot worker: database unavailable (%s: %s); retrying in %.1f s",
                type(exc).__name__,
                exc,
                delay,
            )
            stop.wait(delay)
    log.info("bot worker %s stopped", worker)


OUTBOX_EVERY_S = 30.0


def _file_feedback_outbox(
    conn: psycopg.Connection[Any], ctx: BotContext | None, context: Callable[[], BotContext]
) -> BotContext | None:
    """Console corrections Pyrus could not take when they came are filed from their
    stored rows (the outbox); the context is built only when there is something to file."""
    from kb_core.console.feedback import file_pending

    pending = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM console_feedback WHERE filing = 'pending')"
    ).fetchone()
    if not pending or not pending[0]:
        return ctx
    ctx = ctx or context()
    if ctx.corrections is not None:
        filed = file_pending(conn, ctx.pyrus, ctx.corrections)
        if filed:
            log.info("filed %d pending console correction(s)", filed)
    return ctx


def release(connect: Callable[[], Any], health: WorkerHealth) -> int:
    """Give back the leases of the jobs the worker threads still hold (on shutdown), so
    another worker takes them at once instead of after the lease. Returns how many."""
    released = 0
    for worker, job in health.current().items():
        try:
            with connect() as conn:
                released += jobs.release(conn, job, worker)
        except Exception as exc:  # shutting down: the lease runs out by itself anyway
            log.warning("job %s: lease not released (%s)", job.id, exc)
    return released


def shared_context(factory: Callable[[], BotContext]) -> Callable[[], BotContext]:
    """One context for all worker threads, built once on first use: the scrubber's and
    the embedder's models are loaded once (the scrubber serialises its own calls)."""
    lock = threading.Lock()
    built: list[BotContext] = []

    def get() -> BotContext:
        with lock:
            if not built:
                built.append(factory())
            return built[0]

    return get
