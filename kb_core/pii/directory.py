"""The organisation's people as a deny-list: names the system already knows.

Pyrus members (and contacts of configured catalogs) are fetched with the sources and
refreshed daily. Storing their names would itself be personal data at rest, so only
keyed hashes of their lemmas are kept (table ``person_directory``): every case form of a
directory name («Петровой», «петровой», «Petrova») maps through pymorphy3 (and
transliteration) to a lemma whose hash is looked up. A hash of a common first name can
be guessed by hashing a dictionary of names; what it can no longer tell is who works
here, which is the point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg

from kb_core.pii.names import lemma_hash, name_kind, name_lemmas

_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
# Catalog columns that hold people: matched against the header name (any case).
PERSON_COLUMN = re.compile(r"фио|имя|фамил|отчеств|контакт|сотрудник|name|contact", re.I)


def directory_entries(names: Iterable[str]) -> dict[str, str]:
    """Lemma hash → kind (name, surname, patronymic, word) of every word of ``names``."""
    entries: dict[str, str] = {}
    for full_name in names:
        for match in _WORD.finditer(full_name or ""):
            word = match.group()
            if len(word) < 2:
                continue  # initials
            kind = name_kind(word) or "word"
            for lemma in name_lemmas(word):
                entries.setdefault(lemma_hash(lemma), kind)
    return entries


def member_names(members: Iterable[dict[str, Any]]) -> list[str]:
    """Names of Pyrus members (GET /members): first, last and middle names, and the local
    part of their e-mail (logins are often made of the name)."""
    names = []
    for member in members:
        parts = [str(member.get(k) or "") for k in ("first_name", "last_name", "middle_name")]
        email = str(member.get("email") or "")
        names.append(" ".join([*parts, re.sub(r"[._\-\d]+", " ", email.partition("@")[0])]))
    return [n for n in names if n.strip()]


def catalog_names(catalog: dict[str, Any]) -> list[str]:
    """Values of a catalog's person columns (GET /catalogs/{id}: catalog_headers + items)."""
    headers = catalog.get("catalog_headers") or catalog.get("headers") or []
    columns = [i for i, h in enumerate(headers) if PERSON_COLUMN.search(str(h.get("name", "")))]
    names: list[str] = []
    for item in catalog.get("items") or []:
        if item.get("deleted"):
            continue
        values = item.get("values") or []
        names.extend(str(values[i]) for i in columns if i < len(values) and values[i])
    return names


def save_directory(conn: psycopg.Connection[Any], entries: dict[str, str]) -> int:
    """Replace the stored directory with ``entries`` (one transaction)."""
    with conn.transaction():
        conn.execute("DELETE FROM person_directory")
        with conn.cursor().copy("COPY person_directory (lemma_hash, kind) FROM STDIN") as copy:
            for digest, kind in entries.items():
                copy.write_row((digest, kind))
    return len(entries)


def load_directory(conn: psycopg.Connection[Any]) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute("SELECT lemma_hash FROM person_directory"))
