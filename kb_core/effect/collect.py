"""Collecting one day's tickets: category, bot help and outcome, ready to store.

For every helpdesk ticket created on the day (statistics time zone) the task is read
fresh from Pyrus. The category is the one in the ticket's field (the agent's choice, or
the bot's when nobody changed it); a ticket without one is classified now. The bot's
draft is the one it recorded (``bot_interactions``); for tickets answered before this
bot kept records (or by another bot), the text of the bot's first comment on the task.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import psycopg

from kb_core.bot.actions import explicit_outcome, latest_action
from kb_core.categorize.classifier import Prediction
from kb_core.categorize.configured import CatalogReader
from kb_core.effect.outcomes import CategorySource, category_from_task, ticket_outcome
from kb_core.effect.stats import OutcomeRow, upsert_outcomes
from kb_core.embeddings.base import Embedder
from kb_core.index.versions import VersionInfo
from kb_core.settings import Settings
from kb_core.sources.cursor import parse_time
from kb_core.sources.pyrus_tasks import comment_history


class TicketSource(Protocol):
    def iter_register(
        self, form_id: int, *, modified_after: str | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def get_task(self, task_id: int) -> dict[str, Any]: ...


class PyrusReader(TicketSource, CatalogReader, Protocol):
    """What collecting needs of Pyrus: the tickets, and the catalog of categories."""


@dataclass(frozen=True)
class CollectConfig:
    form_ids: Sequence[int]
    bot_ids: Collection[int]
    category_field: str
    tz: ZoneInfo
    accepted: float
    edited: float


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, start + timedelta(days=1)


def tickets_created_on(
    pyrus: TicketSource, form_ids: Sequence[int], day: date, tz: ZoneInfo
) -> Iterator[dict[str, Any]]:
    """The day's tickets as register summaries. A ticket created that day was modified
    on it or later, so ``modified_after`` the day's start narrows the register."""
    start, end = day_bounds(day, tz)
    after = start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    for form_id in form_ids:
        for summary in pyrus.iter_register(form_id, modified_after=after):
            created = parse_time(summary.get("create_date"))
            if created is not None and start <= created < end:
                yield summary


def recorded_answer(conn: psycopg.Connection[Any], task_id: int) -> tuple[str, str, str] | None:
    """(draft, mode, category) of the bot's first recorded answer to the ticket."""
    row = conn.execute(
        """
        SELECT answer ->> 'draft_reply', mode, category FROM bot_interactions
        WHERE task_id = %s AND trigger <> 'correction' ORDER BY id LIMIT 1
        """,
        (task_id,),
    ).fetchone()
    return (str(row[0] or ""), str(row[1]), str(row[2] or "")) if row else None


def bot_comment_text(task: dict[str, Any], bot_ids: Collection[int]) -> str | None:
    """The bot's first comment on the task (its draft, when no record of ours exists)."""
    for comment in comment_history(task):
        if comment.is_bot(bot_ids) and comment.text.strip():
            return comment.text
    return None


def collect_day(
    conn: psycopg.Connection[Any],
    pyrus: TicketSource,
    day: date,
    config: CollectConfig,
    classify: Callable[[dict[str, Any]], Prediction],
    learn: Callable[[dict[str, Any], str], None] | None = None,
) -> list[OutcomeRow]:
    """Every ticket of the day, each with a category (``classify``: for tickets whose
    field is empty). ``learn``: called with each ticket whose category an agent set, so
    the classifier keeps it as a labelled example (``ticket_learner``)."""
    rows = []
    for summary in tickets_created_on(pyrus, config.form_ids, day, config.tz):
        task = pyrus.get_task(int(summary["id"]))
        recorded = recorded_answer(conn, int(task["id"]))
        if recorded is not None:
            draft, mode, bot_category = recorded
        else:
            draft, mode, bot_category = bot_comment_text(task, config.bot_ids) or "", "", ""
        outcome = ticket_outcome(
            task,
            draft=draft or None,
            bot_mode=mode or None,
            bot_ids=config.bot_ids,
            tz=config.tz,
            accepted=config.accepted,
            edited=config.edited,
        )
        # What the agent explicitly did (sent the draft, corrected it) outranks the
        # similarity guess: a sent draft is the bot's own comment, not an agent reply.
        action = latest_action(conn, int(task["id"]))
        if action is not None and outcome.bot_answered:
            outcome = replace(outcome, outcome=explicit_outcome(action))
        found = category_from_task(task, config.category_field, config.bot_ids)
        source: CategorySource
        confidence: float | None = None
        if found is not None:
            category, chosen_by = found
            source = "bot" if chosen_by == "bot" else "agent"
            if source == "agent" and learn is not None:
                learn(task, category)
        else:
            prediction = classify(task)
            category, source, confidence = prediction.category, "classifier", prediction.confidence
        rows.append(
            OutcomeRow(
                outcome=outcome,
                category=category,
                category_source=source,
                category_confidence=confidence,
                bot_category=bot_category or (category if source == "bot" else None),
                agent_action=action,
            )
        )
    return rows


def collect_config(settings: Settings, form_ids: Sequence[int]) -> CollectConfig:
    from kb_core.sources import configured

    return CollectConfig(
        form_ids=form_ids,
        bot_ids=configured.bot_ids(settings),
        category_field=settings.pyrus.category_field,
        tz=ZoneInfo(settings.schedule.stats_timezone),
        accepted=settings.effect.accepted_similarity,
        edited=settings.effect.edited_similarity,
    )


def ticket_classifier(
    conn: psycopg.Connection[Any],
    settings: Settings,
    pyrus: CatalogReader,
    embedder: Embedder,
) -> Callable[[dict[str, Any]], Prediction]:
    """Classifies a ticket as the bot would: its scrubbed subject and description against
    the labelled tickets of the active version (keywords only before the first one)."""
    from kb_core.bot.query import ticket_question
    from kb_core.categorize.configured import classifier_from_settings
    from kb_core.index.versions import NoActiveVersion, active_version
    from kb_core.pii.configured import config_from_settings
    from kb_core.pii.scrubber import Scrubber
    from kb_core.sources import configured
    from kb_core.text.limits import clean_text, clip

    classifier = classifier_from_settings(settings, pyrus)
    scrubber = Scrubber(config_from_settings(settings))
    fields = configured.ticket_builder(settings).fields
    try:
        version: VersionInfo | None = active_version(conn)
    except NoActiveVersion:
        version = None
    usable = version is not None and version.embedding_model == embedder.model_id

    def classify(task: dict[str, Any]) -> Prediction:
        # Clipped like the bot's query: a 1,000,000-character ticket crashed the report.
        raw = clip(clean_text(ticket_question(task, fields)), settings.bot.max_input_chars)
        text = scrubber.scrub(raw)
        return classifier.predict(
            conn,
            text,
            embedder.embed_query(text) if usable else None,
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            version=version,
            exclude=[str(task["id"])],
        )

    return classify


def ticket_learner(
    conn: psycopg.Connection[Any], settings: Settings, embedder: Embedder
) -> Callable[[dict[str, Any], str], None]:
    """Stores an agent's category with the vector of the ticket's scrubbed question, as
    the bot would embed it (``kb_core.categorize.examples``)."""
    from kb_core.bot.query import ticket_question
    from kb_core.categorize.examples import remember
    from kb_core.pii.configured import config_from_settings
    from kb_core.pii.scrubber import Scrubber
    from kb_core.sources import configured

    scrubber = Scrubber(config_from_settings(settings))
    fields = configured.ticket_builder(settings).fields

    def learn(task: dict[str, Any], category: str) -> None:
        text = scrubber.scrub(ticket_question(task, fields))
        remember(conn, int(task["id"]), category, embedder.embed_query(text), embedder.model_id)

    return learn


def collect_days(
    conn: psycopg.Connection[Any],
    pyrus: PyrusReader,
    days: Iterable[date],
    settings: Settings,
    form_ids: Sequence[int],
    embedder: Embedder,
    *,
    learn: bool = False,
) -> list[OutcomeRow]:
    """Collect each day's tickets and store their outcomes (``ticket_outcomes``), a day at
    a time so a long period keeps what it collected; return every row.

    The one collection workflow of the daily ``ticket_categories`` asset (one day, with
    ``learn``: agents' categories become labelled examples) and of ``kb effect report``
    (a period; ``days`` may be a progress bar's iterator).
    """
    classify = ticket_classifier(conn, settings, pyrus, embedder)
    learner = ticket_learner(conn, settings, embedder) if learn else None
    config = collect_config(settings, form_ids)
    rows: list[OutcomeRow] = []
    for day in days:
        collected = collect_day(conn, pyrus, day, config, classify, learner)
        upsert_outcomes(conn, collected)
        rows.extend(collected)
    return rows
