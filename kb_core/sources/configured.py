"""Source clients built from settings (one place for the mapping, used by the pipeline
resources, the CLI and the bot)."""

from __future__ import annotations

from datetime import timedelta

from kb_core.settings import Settings, split_list
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
    return RetryPolicy(attempts=settings.http_retries, backoff_max_s=settings.http_backoff_max_s)


def overlap(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.sync_overlap_minutes)


def listing_interval(settings: Settings) -> timedelta:
    return timedelta(hours=settings.sync_listing_interval_hours)


def confluence_enabled(settings: Settings) -> bool:
    return bool(settings.confluence_url and split_list(settings.confluence_spaces))


def confluence_client(settings: Settings) -> ConfluenceClient:
    if not settings.confluence_url or settings.confluence_token is None:
        raise ValueError("KB_CONFLUENCE_URL and KB_CONFLUENCE_TOKEN are required")
    return ConfluenceClient(
        settings.confluence_url,
        token=settings.confluence_token.get_secret_value(),
        email=settings.confluence_email,
        page_limit=settings.confluence_page_limit,
        timeout_s=settings.http_timeout_s,
        policy=retry_policy(settings),
    )


def jira_enabled(settings: Settings) -> bool:
    return bool(settings.jira_url and split_list(settings.jira_projects))


def jira_client(settings: Settings) -> JiraClient:
    if not settings.jira_url or settings.jira_token is None:
        raise ValueError("KB_JIRA_URL and KB_JIRA_TOKEN are required")
    return JiraClient(
        settings.jira_url,
        token=settings.jira_token.get_secret_value(),
        email=settings.jira_email,
        api_version=settings.jira_api_version,
        page_limit=settings.jira_page_limit,
        timeout_s=settings.http_timeout_s,
        policy=retry_policy(settings),
    )


def attachment_rules(settings: Settings) -> AttachmentRules:
    return AttachmentRules(
        types=frozenset(t.lower().lstrip(".") for t in split_list(settings.attachment_types)),
        max_bytes=settings.attachment_max_bytes,
        max_chars=settings.attachment_max_chars,
    )


def pyrus_enabled(settings: Settings) -> bool:
    return bool(settings.pyrus_login and settings.pyrus_security_key)


def pyrus_client(settings: Settings) -> PyrusClient:
    if not settings.pyrus_login or settings.pyrus_security_key is None:
        raise ValueError("KB_PYRUS_LOGIN and KB_PYRUS_SECURITY_KEY are required")
    return PyrusClient(
        login=settings.pyrus_login,
        security_key=settings.pyrus_security_key.get_secret_value(),
        api_url=settings.pyrus_api_url,
        auth_url=settings.pyrus_auth_url,
        timeout_s=settings.http_timeout_s,
        policy=retry_policy(settings),
    )


def bot_ids(settings: Settings) -> frozenset[int]:
    """Bots whose comments are excluded (KB_PYRUS_BOT_IDS), this one included if listed."""
    return frozenset(int(i) for i in split_list(settings.pyrus_bot_ids))


def own_bot_ids(settings: Settings) -> frozenset[int]:
    """THIS bot's configured id (the webhook's ``user_id`` is added per event)."""
    return frozenset({settings.pyrus_own_bot_id}) if settings.pyrus_own_bot_id else frozenset()


def ticket_builder(settings: Settings) -> TicketDocumentBuilder:
    return TicketDocumentBuilder(
        fields=TicketFields(
            subject=settings.pyrus_subject_field,
            description=tuple(split_list(settings.pyrus_description_fields)),
            category=settings.pyrus_category_field,
            solution_confirmed=settings.pyrus_solution_confirmed_field,
        ),
        bot_ids=bot_ids(settings),
        task_url=settings.pyrus_task_url,
    )


def correction_builder(settings: Settings) -> CorrectionDocumentBuilder:
    return CorrectionDocumentBuilder(task_url=settings.pyrus_task_url)
