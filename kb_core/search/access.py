"""Answers within each reader's rights: the permission clause of every search.

A document with a row in ``document_access`` may be read only by members of one of its
groups; a document without one by everyone. The clause is its own parameter of the
search (``SearchOptions.reader_groups``), apart from any scope filter: scope narrows
what a reader asked for, permission bounds what a reader may see, and the two must
never be traded against each other.

The clause sits inside each half's SQL, not after fusion, so a restricted document
never takes a candidate slot (nor changes a score) of a reader who may not see it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from psycopg import sql


def readable(document_id: sql.Composable, groups: Collection[str] | None) -> sql.Composable:
    """SQL true for the documents a reader of ``groups`` may read (None: no filter, for
    the pipeline and evaluation, which read everything they index)."""
    if groups is None:
        return sql.SQL("TRUE")
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM document_access a WHERE a.document_id = {doc} "
        "AND NOT a.groups && {groups}::text[])"
    ).format(doc=document_id, groups=sql.Literal(sorted(groups)))


def readable_in_bulk(document_id: sql.Composable, groups: Collection[str] | None) -> sql.Composable:
    """:func:`readable` for a clause evaluated on many rows of one query (the lexical
    half checks every posting it reads, up to 1,000 per query term): the documents the
    reader may not read are selected once, into a hash the planner builds for the
    uncorrelated ``NOT IN`` subquery ("hashed SubPlan"), and each row costs a hash
    probe instead of an index lookup into ``document_access`` and an array overlap.
    ``document_id`` is never NULL, so ``NOT IN`` means what ``NOT EXISTS`` does."""
    if groups is None:
        return sql.SQL("TRUE")
    return sql.SQL(
        "{doc} NOT IN (SELECT a.document_id FROM document_access a "
        "WHERE NOT a.groups && {groups}::text[])"
    ).format(doc=document_id, groups=sql.Literal(sorted(groups)))


def parse_group_map(text: str, setting: str) -> dict[str, frozenset[str]]:
    """``KEY:group,group;KEY2:group`` as {key: groups}; a malformed entry is a
    ValueError naming the setting."""
    out: dict[str, frozenset[str]] = {}
    for entry in text.split(";"):
        if not entry.strip():
            continue
        key, sep, groups = entry.partition(":")
        names = frozenset(g.strip() for g in groups.split(",") if g.strip())
        if not sep or not key.strip() or not names:
            raise ValueError(f"{setting}: {entry.strip()!r} is not KEY:group[,group…]")
        out[key.strip()] = names
    return out


def form_audiences(text: str) -> Mapping[int, frozenset[str]]:
    """KB_PYRUS_FORM_GROUPS as {form id: groups}."""
    parsed = parse_group_map(text, "KB_PYRUS_FORM_GROUPS")
    try:
        return {int(form): groups for form, groups in parsed.items()}
    except ValueError:
        raise ValueError("KB_PYRUS_FORM_GROUPS: form ids must be numbers") from None
