"""The bot's Russian texts, loaded from ``config/texts_ru.yaml`` (the one place they live).

``load_texts(path)`` reads the shipped file and, when ``path`` (``KB_BOT_TEXTS_PATH``)
names another YAML file, lays that file's keys over it, so a deployment overrides only
what it wants to word differently. Every key must be a non-empty string; templates may
use only their documented placeholders. Mistakes are a ``ValueError`` naming the file
and the key, at load time rather than when the first ticket arrives.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kb_core.settings import PROJECT_ROOT

DEFAULT_TEXTS_PATH = PROJECT_ROOT / "config" / "texts_ru.yaml"


class Texts(BaseModel):
    """Every user-facing string of the bot (values: ``config/texts_ru.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heading_recommendations: str
    heading_draft: str
    heading_sources: str
    heading_sources_uncited: str
    label_category: str
    label_confidence: str
    confidence_value: str
    mode_llm: str
    mode_extractive: str
    reason_llm_error: str
    reason_invalid_output: str
    source_article: str
    source_file: str
    source_ticket: str
    source_correction: str
    no_answer_draft: str
    no_answer_recommendation: str
    draft_template: str
    recommend_article: str
    recommend_ticket: str
    recommend_correction: str
    links_removed_warning: str  # issue 20
    # issue 23: the customer draft's own greeting, closing and article reference
    draft_greeting: str
    draft_closing: str
    draft_reference: str

    # correction loop
    correction_filed: str
    correction_not_filed: str
    correction_task_text: str
    # issue 19: the agent's send command and the one-line hint under every answer
    answer_hint: str
    send_done: str
    send_already: str
    send_no_draft: str
    send_no_channel: str

    # notifications
    notify_title_digest: str
    notify_title_run_failure: str
    notify_title_promotion_blocked: str
    notify_title_weekly_report: str
    notify_digest: str
    notify_digest_categories: str
    notify_digest_category: str
    notify_run_failure: str
    notify_run_failure_no_steps: str
    notify_promotion_blocked: str
    notify_weekly_report: str

    # effect report
    effect_period: str
    effect_heading_charts: str
    effect_heading_categories: str
    effect_heading_method: str
    effect_method: str
    effect_method_thresholds: str
    effect_no_tickets: str
    effect_total: str
    effect_col_category: str
    effect_col_tickets: str
    effect_col_bot_answered: str
    effect_col_coverage: str
    effect_col_accepted: str
    effect_col_edited: str
    effect_col_rewritten: str
    effect_col_not_used: str
    effect_col_no_reply: str
    effect_col_acceptance_rate: str
    effect_col_first_response_median: str
    effect_col_first_response_p90: str
    effect_col_resolution_median: str
    effect_col_minutes_saved: str
    effect_col_category_agreement: str
    effect_chart_coverage: str
    effect_chart_trend: str
    effect_series_tickets: str
    effect_series_answered: str
    effect_series_drafts_used: str
    # issue 22: the measured effect (controlled comparison, before/after, intervals)
    effect_heading_effect: str
    effect_holdout_summary: str
    effect_holdout_on: str
    effect_holdout_off: str
    effect_interval_note: str
    effect_insufficient: str
    effect_col_assisted: str
    effect_col_holdout: str
    effect_col_first_response_change: str
    effect_col_resolution_change: str
    effect_col_reopen_change: str
    effect_col_replies_change: str
    effect_col_minutes_measured: str
    effect_col_before_after: str
    effect_minutes_fallback: str
    effect_before_after_caveat: str
    effect_no_baseline: str
    effect_chart_effect: str
    effect_chart_effect_trend: str
    effect_method_effect: str
    notify_digest_effect: str
    notify_digest_effect_line: str

    # agent console
    console_title: str
    console_question_label: str
    console_question_placeholder: str
    console_ask: str
    console_advanced: str
    console_mode: str
    console_mode_hybrid: str
    console_mode_vector: str
    console_mode_lexical: str
    console_min_score: str
    console_k: str
    console_expand: str
    console_version: str
    console_version_active: str
    console_heading_answer: str
    console_heading_sources: str
    console_no_sources: str
    console_score_vector: str
    console_score_lexical: str
    console_score_final: str
    console_score_boosts: str
    console_answer_meta: str
    console_feedback_helpful: str
    console_feedback_wrong: str
    console_feedback_correction: str
    console_feedback_send: str
    console_feedback_thanks: str
    console_feedback_filed: str
    console_error: str
    console_not_ready: str
    console_correction_task_text: str
    # issue 23: optional answer-side steps in the advanced settings
    console_opt_query: str
    console_rerank: str
    # issue 25: identities and roles
    console_correction_approved: str
    console_signed_in_as: str
    console_role_agent: str
    console_role_knowledge_owner: str
    console_role_administrator: str
    # issue 24: the scope of a console search
    console_scope: str
    console_scope_source: str
    console_scope_source_hint: str
    console_scope_space: str
    console_scope_space_hint: str
    console_scope_form: str
    console_scope_form_hint: str
    # issue 25: the knowledge owner's tools on the page
    console_owner_heading: str
    console_approve_label: str
    console_approve: str
    console_approved: str
    console_synonyms_label: str
    console_synonyms_save: str
    console_synonyms_saved: str
    console_action_failed: str


# The placeholders each template may use (a key not listed here takes none).
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "confidence_value": frozenset({"percent"}),
    "source_ticket": frozenset({"id"}),
    "draft_template": frozenset({"greeting", "answer", "reference", "closing", "title"}),
    "draft_reference": frozenset({"title"}),
    "recommend_article": frozenset({"title", "quote"}),
    "recommend_ticket": frozenset({"id", "title", "quote"}),
    "recommend_correction": frozenset({"title", "quote"}),
    "correction_filed": frozenset({"url"}),
    "correction_task_text": frozenset({"url"}),
    "answer_hint": frozenset({"send", "correct"}),
    # notifications
    "notify_digest": frozenset(
        {"day", "tickets", "bot_answered", "answered_percent"}
        | {"accepted", "edited", "minutes_saved"}
    ),
    "notify_digest_category": frozenset({"category", "tickets", "bot_answered"}),
    "notify_run_failure": frozenset({"job", "run_id", "steps", "error"}),
    "notify_promotion_blocked": frozenset({"version"}),
    "notify_weekly_report": frozenset({"week", "location"}),
    # effect report
    "effect_period": frozenset({"period"}),
    "console_answer_meta": frozenset({"mode", "version", "ms"}),
    "console_feedback_filed": frozenset({"url"}),
    "console_signed_in_as": frozenset({"name", "roles"}),
    "effect_method_thresholds": frozenset(
        {"accepted", "edited", "minutes_accepted", "minutes_edited"}
    ),
    # issue 22: the measured effect
    "effect_holdout_summary": frozenset({"window", "assisted", "holdout", "share", "state"}),
    "effect_interval_note": frozenset({"level", "insufficient", "min_sample"}),
    "effect_minutes_fallback": frozenset({"minutes"}),
    "effect_before_after_caveat": frozenset({"start", "before"}),
    "notify_digest_effect": frozenset({"window", "assisted", "holdout"}),
    "notify_digest_effect_line": frozenset({"category", "effect"}),
}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the bot texts ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the bot texts must be a mapping of key: text")
    known = set(Texts.model_fields)
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}: {key!r} must be a non-empty string")
        _check_placeholders(path, key, value)
    return data


def _check_placeholders(path: Path, key: str, value: str) -> None:
    allowed = PLACEHOLDERS.get(key, frozenset())
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{path}: {key!r} is not a valid template ({exc})") from None
    unknown = sorted(used - allowed)
    if unknown:
        hint = ", ".join("{" + name + "}" for name in sorted(allowed)) or "none"
        raise ValueError(
            f"{path}: {key!r} uses unknown placeholder(s) {', '.join(unknown)}; "
            f"allowed: {hint} (write {{{{ and }}}} for literal braces)"
        )


@lru_cache(maxsize=8)
def _load(path: Path | None, stamp: tuple[float, ...]) -> Texts:
    data = _read(DEFAULT_TEXTS_PATH)
    if path is not None and path != DEFAULT_TEXTS_PATH:
        data.update(_read(path))
    try:
        return Texts(**data)
    except ValidationError as exc:
        missing = [".".join(str(p) for p in error["loc"]) for error in exc.errors()]
        raise ValueError(
            f"{DEFAULT_TEXTS_PATH}: bot texts missing or invalid: {', '.join(missing)}"
        ) from None


def load_texts(path: Path | None = None) -> Texts:
    """The shipped texts, overridden by the keys of ``path`` (cached until a file changes)."""
    resolved = path.expanduser().resolve() if path is not None else None
    files = [DEFAULT_TEXTS_PATH] + ([resolved] if resolved is not None else [])
    stamp = tuple(f.stat().st_mtime_ns if f.exists() else -1.0 for f in files)
    return _load(resolved, stamp)
