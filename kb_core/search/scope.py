"""Scoped search: restrict hits to some sources, spaces/projects or helpdesk forms.

Documents already carry what a scope needs: their ``source`` column, the Confluence
space (``metadata.space``, also on page attachments), the Jira project
(``metadata.project``) and the Pyrus form (``metadata.form_id``). A scope is applied as
ONE separate clause on document ids (:func:`scope_clause`), after each retriever
returned its candidates and before fusion, with a larger candidate pool so a narrow
scope still finds enough: permission filtering (a later, independent clause) can sit
beside it without the two knowing each other.

The bot's scope is configured per Pyrus form (``KB_BOT_FORM_SCOPES``, JSON): the same
knowledge base answers several helpdesks, each from its own part.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# A narrow scope filters most candidates out: fetch this many times more before.
SCOPE_POOL_FACTOR = 4


@dataclass(frozen=True)
class SearchScope:
    """Empty fields do not restrict; several values in one field are alternatives."""

    sources: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ()  # Confluence space keys or Jira project keys
    forms: tuple[int, ...] = ()  # Pyrus form ids

    @property
    def empty(self) -> bool:
        return not (self.sources or self.spaces or self.forms)

    @classmethod
    def of(
        cls,
        sources: Collection[str] | None = None,
        spaces: Collection[str] | None = None,
        forms: Collection[int | str] | None = None,
    ) -> SearchScope:
        """A scope from loose input (CLI options, query parameters); blanks dropped."""

        def clean(values: Collection[Any] | None) -> list[str]:
            out = []
            for value in values or ():
                out += [v.strip() for v in str(value).split(",") if v.strip()]
            return out

        try:
            form_ids = tuple(int(f) for f in clean(forms))
        except ValueError as exc:
            raise ValueError(f"a form must be a number: {exc}") from None
        return cls(tuple(clean(sources)), tuple(clean(spaces)), form_ids)

    def as_json(self) -> dict[str, list[Any]]:
        return {
            "sources": list(self.sources),
            "spaces": list(self.spaces),
            "forms": list(self.forms),
        }


def scope_clause(scope: SearchScope, alias: str = "d") -> sql.Composed:
    """The SQL condition on ``documents`` (aliased ``alias``) a scope stands for."""
    column = sql.Identifier(alias)
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    if scope.sources:
        parts.append(
            sql.SQL("{}.source = ANY({})").format(column, sql.Literal(list(scope.sources)))
        )
    if scope.spaces:
        parts.append(
            sql.SQL("coalesce({0}.metadata->>'space', {0}.metadata->>'project') = ANY({1})").format(
                column, sql.Literal(list(scope.spaces))
            )
        )
    if scope.forms:
        parts.append(
            sql.SQL("{}.metadata->>'form_id' = ANY({})").format(
                column, sql.Literal([str(f) for f in scope.forms])
            )
        )
    return sql.SQL(" AND ").join(parts)


def documents_in_scope(
    conn: psycopg.Connection[Any], document_ids: Collection[int], scope: SearchScope
) -> set[int]:
    """Which of ``document_ids`` the scope admits."""
    if scope.empty or not document_ids:
        return set(document_ids)
    query = sql.SQL("SELECT d.id FROM documents d WHERE d.id = ANY({ids}) AND {clause}").format(
        ids=sql.Literal(list(document_ids)), clause=scope_clause(scope)
    )
    return {int(row[0]) for row in conn.execute(query)}


def form_scopes(raw: str) -> dict[int, SearchScope]:
    """``KB_BOT_FORM_SCOPES``: ``{"321": {"sources": [...], "spaces": [...]}, ...}``."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, Mapping):
            raise ValueError("expected an object keyed by form id")
        return {
            int(form): SearchScope.of(spec.get("sources"), spec.get("spaces"), spec.get("forms"))
            for form, spec in data.items()
        }
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"KB_BOT_FORM_SCOPES is not valid: {exc}") from None
