"""Source permissions of documents (``document_access``), synced with the sources.

Written apart from the documents' content: a permission change re-embeds nothing, and
it takes effect at once in every search (kb_core.search.access), without waiting for a
new index version to be promoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg


def sync_access(
    conn: psycopg.Connection[Any],
    source: str,
    access: Mapping[str, frozenset[str] | None],
    *,
    origin: str,
) -> int:
    """Set who may read each of a source's documents by external id (None: everyone);
    returns how many rows changed. Ids not yet in ``documents`` are skipped."""
    restricted = [(sorted(g), origin, source, ext) for ext, g in access.items() if g is not None]
    public = [(source, ext) for ext, g in access.items() if g is None]
    changed = 0
    with conn.transaction(), conn.cursor() as cur:
        if restricted:
            cur.executemany(
                "INSERT INTO document_access (document_id, groups, origin) "
                "SELECT id, %s, %s FROM documents WHERE source = %s AND external_id = %s "
                "ON CONFLICT (document_id) DO UPDATE SET groups = EXCLUDED.groups, "
                "origin = EXCLUDED.origin, updated_at = now() "
                "WHERE document_access.groups IS DISTINCT FROM EXCLUDED.groups",
                restricted,
                returning=False,
            )
            changed += max(cur.rowcount, 0)
        if public:
            cur.executemany(
                "DELETE FROM document_access a USING documents d "
                "WHERE a.document_id = d.id AND d.source = %s AND d.external_id = %s",
                public,
            )
            changed += max(cur.rowcount, 0)
    return changed


def apply_form_access(
    conn: psycopg.Connection[Any], source: str, forms: Mapping[int, frozenset[str]]
) -> None:
    """Tickets are readable by their form's groups (KB_PYRUS_FORM_GROUPS); tickets of
    unlisted forms by everyone. Applied to every ticket of the source, so a changed
    setting reaches tickets indexed long ago."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM document_access a USING documents d WHERE a.document_id = d.id "
            "AND d.source = %s AND NOT (d.metadata->>'form_id' = ANY(%s))",
            (source, [str(form) for form in forms]),
        )
        for form, groups in forms.items():
            conn.execute(
                "INSERT INTO document_access (document_id, groups, origin) "
                "SELECT id, %s, 'pyrus:form' FROM documents "
                "WHERE source = %s AND metadata->>'form_id' = %s "
                "ON CONFLICT (document_id) DO UPDATE SET groups = EXCLUDED.groups, "
                "origin = EXCLUDED.origin, updated_at = now() "
                "WHERE document_access.groups IS DISTINCT FROM EXCLUDED.groups",
                (sorted(groups), source, str(form)),
            )
