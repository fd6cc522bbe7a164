"""Source clients built from settings (one place for the mapping, used by the pipeline
resources, the CLI and the bot)."""

from __future__ import annotations

from datetime import timedelta

from kb_core.settings import Settings
from kb_core.sources.attachments import AttachmentRules
from kb_core.sources.confluence import ConfluenceClient
from kb_core.sources.http import RetryPolicy
from kb_core.sources.jira import JiraClient
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_tasks import (
    CorrectionDocumentBuilder,
    TicketDocumentBuilder,
    TicketFields,
)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.http.retries, backoff_max_s=settings.http.backoff_max_s)


def overlap(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.sync.overlap_minutes)


def listing_interval(settings: Settings) -> timedelta:
    return timedelta(hours=settings.sync.listing_interval_hours)


def confluence_enabled(settings: Settings) -> bool:
    return bool(settings.confluence.url and settings.confluence.spaces)


def confluence_client(settings: Settings) -> ConfluenceClient:
    if not settings.confluence.url or settings.confluence.token is None:
        raise ValueError("KB_CONFLUENCE_URL and KB_CONFLUENCE_TOKEN are required")
    return ConfluenceClient(
        settings.confluence.url,
        token=settings.confluence.token.get_secret_value(),
        email=settings.confluence.email,
        page_limit=settings.confluence.page_limit,
        timeout_s=settings.http.timeout_s,
        policy=retry_policy(settings),
    )


def jira_enabled(settings: Settings) -> bool:
    return bool(settings.jira.url and settings.jira.projects)


def jira_client(settings: Settings) -> JiraClient:
    if not settings.jira.url or settings.jira.token is None:
        raise ValueError("KB_JIRA_URL and KB_JIRA_TOKEN are required")
    return JiraClient(
        settings.jira.url,
        token=settings.jira.token.get_secret_value(),
        email=settings.jira.email,
        api_version=settings.jira.api_version,
        page_limit=settings.jira.page_limit,
        timeout_s=settings.http.timeout_s,
        policy=retry_policy(settings),
    )


def attachment_rules(settings: Settings) -> AttachmentRules:
    return AttachmentRules(
        types=frozenset(t.lower().lstrip(".") for t in settings.attachments.types),
        max_bytes=settings.attachments.max_bytes,
        max_chars=settings.attachments.max_chars,
    )


def pyrus_enabled(settings: Settings) -> bool:
    return bool(settings.pyrus.login and settings.pyrus.security_key)


def pyrus_client(settings: Settings) -> PyrusClient:
    if not settings.pyrus.login or settings.pyrus.security_key is None:
        raise ValueError("KB_PYRUS_LOGIN and KB_PYRUS_SECURITY_KEY are required")
    return PyrusClient(
        login=settings.pyrus.login,
        security_key=settings.pyrus.security_key.get_secret_value(),
        api_url=settings.pyrus.api_url,
        auth_url=settings.pyrus.auth_url,
        timeout_s=settings.http.timeout_s,
        policy=retry_policy(settings),
    )


def bot_ids(settings: Settings) -> frozenset[int]:
    """Bots whose comments are excluded (KB_PYRUS_BOT_IDS), this one included if listed."""
    return frozenset(settings.pyrus.bot_ids)


def own_bot_ids(settings: Settings) -> frozenset[int]:
    """THIS bot's configured id (the webhook's ``user_id`` is added per event)."""
    return frozenset({settings.pyrus.own_bot_id}) if settings.pyrus.own_bot_id else frozenset()


def ticket_builder(settings: Settings) -> TicketDocumentBuilder:
    return TicketDocumentBuilder(
        fields=TicketFields(
            subject=settings.pyrus.subject_field,
            description=tuple(settings.pyrus.description_fields),
            category=settings.pyrus.category_field,
            solution_confirmed=settings.pyrus.solution_confirmed_field,
        ),
        bot_ids=bot_ids(settings),
        task_url=settings.pyrus.task_url,
    )


def correction_builder(settings: Settings) -> CorrectionDocumentBuilder:
    return CorrectionDocumentBuilder(task_url=settings.pyrus.task_url)
