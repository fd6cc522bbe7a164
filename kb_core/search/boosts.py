"""Document boosts applied to the fused score: what a support engineer trusts more.

A curated correction outranks everything it competes with, and the page it names as the
one it replaces (``supersedes``) drops below it; a ticket whose solution the
requester confirmed beats an unconfirmed one; a fresh page beats a stale one; a query
that names a document's title points at it. Factors multiply the final score, are
configurable (KB_BOOST_*; 1.0 disables one) and are reported with every hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql

from kb_core.index.versions import visible
from kb_core.settings import BoostSettings, defaults_of
from kb_core.sources.pyrus_tasks import CORRECTIONS_SOURCE, TICKETS_SOURCE
from kb_core.text.lemmas import lemmas

MIN_TERM_LETTERS = 3


# every configurable option defaults to its setting's default, written once on the setting
_DEFAULT = defaults_of(BoostSettings)


@dataclass(frozen=True)
class Boosts:
    """Boost factors; each defaults to its setting's default (KB_BOOST_*)."""

    title: float = _DEFAULT["title"]
    title_min_share: float = 0.5  # of the query's words found in the title
    recent: float = _DEFAULT["recent"]
    recent_days: int = _DEFAULT["recent_days"]
    confirmed_solution: float = _DEFAULT["confirmed_solution"]
    correction: float = _DEFAULT["correction"]
    superseded: float = _DEFAULT["superseded"]  # a page a live correction replaces

    @classmethod
    def from_settings(cls, boosts: BoostSettings) -> Boosts:
        """The configured factors (KB_BOOST_*)."""
        return cls(
            title=boosts.title,
            recent=boosts.recent,
            recent_days=boosts.recent_days,
            confirmed_solution=boosts.confirmed_solution,
            correction=boosts.correction,
            superseded=boosts.superseded,
        )

    @property
    def enabled(self) -> bool:
        factors = (self.title, self.recent, self.confirmed_solution, self.correction)
        return any(f != 1.0 for f in (*factors, self.superseded))


NO_BOOSTS = Boosts(title=1.0, recent=1.0, confirmed_solution=1.0, correction=1.0, superseded=1.0)


def _content_terms(text: str) -> set[str]:
    return {t for t in lemmas(text) if len(t) >= MIN_TERM_LETTERS}


@lru_cache(maxsize=65_536)
def _title_terms(title: str) -> frozenset[str]:
    """A title's terms, kept: every search compares the query with the titles of up to a
    hundred candidate documents, the same titles again and again (safe titles: no PII)."""
    return frozenset(_content_terms(title))


def document_boosts(
    conn: psycopg.Connection[Any],
    document_ids: Iterable[int],
    query: str,
    boosts: Boosts,
    *,
    now: datetime | None = None,
    version: int | None = None,
) -> dict[int, dict[str, float]]:
    """The boosts that apply to each document, by name (absent: none applies).
    ``version``: the index version searched (a correction supersedes only from the
    version that holds it)."""
    ids = list(document_ids)
    if not ids or not boosts.enabled:
        return {}
    now = now or datetime.now(UTC)
    recent_after = now - timedelta(days=boosts.recent_days)
    query_terms = _content_terms(query)
    result: dict[int, dict[str, float]] = {}
    rows = conn.execute(
        """
        SELECT id, source, coalesce(safe_title, title), source_updated_at,
               coalesce((metadata ->> 'solution_confirmed')::boolean, false)
        FROM documents WHERE id = ANY(%s)
        """,
        (ids,),
    ).fetchall()
    superseded = _superseded(conn, ids, version) if boosts.superseded != 1.0 else set()
    for doc_id, source, title, updated_at, confirmed in rows:
        applied: dict[str, float] = {}
        if boosts.title != 1.0 and query_terms:
            share = len(query_terms & _title_terms(title)) / len(query_terms)
            if share >= boosts.title_min_share:
                applied["title"] = boosts.title
        if boosts.recent != 1.0 and updated_at is not None and updated_at >= recent_after:
            applied["recent"] = boosts.recent
        if source == TICKETS_SOURCE and confirmed and boosts.confirmed_solution != 1.0:
            applied["confirmed_solution"] = boosts.confirmed_solution
        if source == CORRECTIONS_SOURCE and boosts.correction != 1.0:
            applied["correction"] = boosts.correction
        if int(doc_id) in superseded:
            applied["superseded"] = boosts.superseded
        if applied:
            result[int(doc_id)] = applied
    return result


def _superseded(conn: psycopg.Connection[Any], ids: list[int], version: int | None) -> set[int]:
    """Which of ``ids`` a live correction names as replaced: by external id,
    ``source:external_id`` or URL (what a knowledge owner can copy from the page). With
    ``version``, only corrections that version holds count: a correction still waiting in
    a candidate must not demote the page the bot reads now."""
    in_version: sql.Composable = sql.SQL("TRUE")
    if version is not None:
        in_version = sql.SQL(
            "EXISTS (SELECT 1 FROM chunks ch WHERE ch.document_id = c.id AND {visible})"
        ).format(visible=visible("ch", version))
    rows = conn.execute(
        sql.SQL(
            """
            SELECT DISTINCT d.id FROM documents d
            JOIN documents c ON c.source = %s AND c.deleted_at IS NULL
             AND trim(c.metadata ->> 'supersedes') IN (d.external_id,
                                                       d.source || ':' || d.external_id, d.url)
            WHERE d.id = ANY(%s) AND d.source <> %s AND {in_version}
            """
        ).format(in_version=in_version),
        (CORRECTIONS_SOURCE, ids, CORRECTIONS_SOURCE),
    ).fetchall()
    return {int(r[0]) for r in rows}
