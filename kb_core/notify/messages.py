"""The Russian text of each notification, from plain data.

Wording lives in ``config/texts_ru.yaml`` (keys ``notify_*``); these functions only
compute and fill in the numbers, so a deployment rewords a message without code and the
callers (Dagster assets, sensors) pass plain dicts and lists, no Dagster objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kb_core.texts import Texts, load_texts

if TYPE_CHECKING:
    from kb_core.effect.measured import MeasuredEffect

#: How many categories the daily digest lists.
TOP_CATEGORIES = 5
#: Longest error summary quoted in a run-failure message (stack traces stay in Dagster).
MAX_ERROR_CHARS = 500


def title(kind: str, texts: Texts | None = None) -> str:
    """The short title of a notification kind (the messenger template's ``title``)."""
    texts = texts or load_texts()
    titles = {
        "digest": texts.notify_title_digest,
        "run_failure": texts.notify_title_run_failure,
        "promotion_blocked": texts.notify_title_promotion_blocked,
        "weekly_report": texts.notify_title_weekly_report,
    }
    if kind not in titles:
        raise ValueError(f"unknown notification kind {kind!r} (known: {', '.join(titles)})")
    return titles[kind]


def digest_text(
    day: dt.date | str,
    totals: Mapping[str, Any],
    per_category: Sequence[Mapping[str, Any]],
    texts: Texts | None = None,
    effect: MeasuredEffect | None = None,
) -> str:
    """The daily digest.

    ``totals``: ``tickets``, ``bot_answered``, ``accepted``, ``edited``, ``minutes_saved``
    (a missing key counts as 0). ``per_category``: dicts with ``category``, ``tickets`` and
    ``bot_answered``; the busiest :data:`TOP_CATEGORIES` are listed. ``effect``: the
    measured effect (controlled first-response change with its interval, or «мало данных»)
    of the busiest categories and in total, with the holdout's size.
    """
    texts = texts or load_texts()
    tickets = _count(totals, "tickets")
    answered = _count(totals, "bot_answered")
    lines = [
        texts.notify_digest.format(
            day=day.isoformat() if isinstance(day, dt.date) else day,
            tickets=_number(tickets),
            bot_answered=_number(answered),
            answered_percent=round(100 * answered / tickets) if tickets else 0,
            accepted=_number(_count(totals, "accepted")),
            edited=_number(_count(totals, "edited")),
            minutes_saved=_number(_count(totals, "minutes_saved")),
        )
    ]
    busiest = sorted(per_category, key=lambda row: -_count(row, "tickets"))[:TOP_CATEGORIES]
    if busiest:
        lines.append(texts.notify_digest_categories)
        lines.extend(
            texts.notify_digest_category.format(
                category=row.get("category") or "—",
                tickets=_number(_count(row, "tickets")),
                bot_answered=_number(_count(row, "bot_answered")),
            )
            for row in busiest
        )
    if effect is not None:
        from kb_core.effect.report import format_effect

        lines.append(
            texts.notify_digest_effect.format(
                window=f"{effect.start.isoformat()} — {effect.end.isoformat()}",
                assisted=effect.total.assisted,
                holdout=effect.total.holdout,
            )
        )
        for row in [*effect.per_category[:TOP_CATEGORIES], effect.total]:
            lines.append(
                texts.notify_digest_effect_line.format(
                    category=row.category if row.category is not None else texts.effect_total,
                    effect=format_effect(row.controlled.get("first_response"), texts),
                )
            )
    return "\n".join(lines)


def run_failure_text(
    job_name: str,
    run_id: str,
    step_keys: Sequence[str],
    error_summary: str,
    texts: Texts | None = None,
) -> str:
    """A failed Dagster run: which job, which run, which steps, the gist of the error."""
    texts = texts or load_texts()
    error = " ".join(error_summary.split())
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1].rstrip() + "…"
    return texts.notify_run_failure.format(
        job=job_name,
        run_id=run_id,
        steps=", ".join(step_keys) or texts.notify_run_failure_no_steps,
        error=error or "—",
    )


def promotion_blocked_text(
    version_id: int | str, failures: Sequence[str], texts: Texts | None = None
) -> str:
    """A candidate index version the quality gates kept from going live, and why."""
    texts = texts or load_texts()
    lines = [texts.notify_promotion_blocked.format(version=version_id)]
    lines.extend(f"• {failure}" for failure in failures)
    return "\n".join(lines)


def weekly_report_text(week_label: str, report_location: str, texts: Texts | None = None) -> str:
    """The weekly effect report is ready; ``report_location``: its link or file path."""
    texts = texts or load_texts()
    return texts.notify_weekly_report.format(week=week_label, location=report_location)


def _count(row: Mapping[str, Any], key: str) -> float:
    """A number from a row as SQL returns it (int, float, Decimal); missing counts as 0."""
    value = row.get(key)
    if value is None or isinstance(value, bool):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _number(value: float) -> str:
    """Whole numbers as such, others with one decimal and the Russian decimal comma."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}".replace(".", ",")
