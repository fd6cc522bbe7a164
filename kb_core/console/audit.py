"""The audit log: who searched, asked, gave feedback, approved or was refused, and when.

The subject is a keyed pseudonym (kb_core.console.identity.Pseudonyms), the text is
scrubbed of personal data before it is stored, and rows older than the retention are
deleted by index maintenance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

# "refused": a 401/403 of the console (no query, the route in the detail); "synonyms": the
# dictionary edited from the console.
ACTIONS = ("search", "answer", "feedback", "approve", "audit", "synonyms", "refused")


def record(
    conn: psycopg.Connection[Any],
    *,
    subject: str,
    roles: Sequence[str],
    action: str,
    query: str | None,
    status: int,
    scrub: Callable[[str], str],
    detail: dict[str, Any] | None = None,
) -> int:
    """Store one call; ``query`` is scrubbed here, so no caller can forget it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    row = conn.execute(
        "INSERT INTO audit_log (subject, roles, action, query, status, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (
            subject,
            list(roles),
            action,
            scrub(query) if query else None,
            status,
            json.dumps(detail or {}, ensure_ascii=False),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def purge(conn: psycopg.Connection[Any], retention_days: int) -> int:
    """Delete entries older than the retention; returns how many."""
    return conn.execute(
        "DELETE FROM audit_log WHERE at < now() - make_interval(days => %s)", (retention_days,)
    ).rowcount


def recent(conn: psycopg.Connection[Any], limit: int = 100) -> list[dict[str, Any]]:
    """The latest entries, newest first (for administrators)."""
    rows = conn.execute(
        "SELECT id, at, subject, roles, action, query, status, detail FROM audit_log "
        "ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    keys = ("id", "at", "subject", "roles", "action", "query", "status", "detail")
    return [dict(zip(keys, row, strict=True)) for row in rows]
