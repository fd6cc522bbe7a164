"""How many of the personal data values planted in the samples sit in a database.

The sample tickets come with their own labels (``samples/**/*.pii.json``: type and value
of every planted name, phone, e-mail, INN, …). After an ingest none of them may appear in
any text, JSON, array or full-text column of the knowledge-base database. This scans every
such column (found through information_schema, so a new table cannot be forgotten) and
reports counts per type and per column, never the values.

    .venv/bin/python -m evals.planted_pii --database-url postgresql://…
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Column types whose text can hold a value (arrays of text included). Full-text vectors
# are not scanned: they hold snowball stems of chunk text, title and headings (scanned
# themselves), and stems collide with short names («левый» → 'лев'), so a match there
# says nothing; their lemmas are scanned in chunk_terms and version_terms.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")


@dataclass(frozen=True)
class Planted:
    kind: str
    value: str


def planted_values(root: Path = SAMPLES) -> list[Planted]:
    values: list[Planted] = []
    for path in sorted(root.rglob("*.pii.json")):
        values.extend(Planted(i["type"], i["value"]) for i in json.loads(path.read_text("utf-8")))
    return values


def _pattern(value: str) -> re.Pattern[str]:
    # Whole words, any case: «наталья» must not hide behind a capital letter, and a short
    # planted name («Лев») must not match inside another word («левый»).
    return re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)


@dataclass
class Leaks:
    """Planted entries found (of the labels' list, duplicates counted as the labels list
    them), by type and by column; ``distinct`` counts different values."""

    entries: set[int] = field(default_factory=set)
    kinds: dict[int, Planted] = field(default_factory=dict)
    by_column: Counter[str] = field(default_factory=Counter)

    @property
    def by_type(self) -> dict[str, int]:
        return dict(Counter(self.kinds[i].kind for i in self.entries))

    def as_json(self) -> dict[str, Any]:
        return {
            "found": len(self.entries),
            "distinct": len({self.kinds[i] for i in self.entries}),
            "by_type": self.by_type,
            "by_column": dict(self.by_column),
        }


def find_in_texts(texts: Iterable[str], planted: list[Planted], label: str, leaks: Leaks) -> None:
    blob = "\n".join(texts)
    if not blob:
        return
    folded = blob.casefold()
    for index, item in enumerate(planted):
        if item.value.casefold() in folded and _pattern(item.value).search(blob):
            leaks.entries.add(index)
            leaks.kinds[index] = item
            leaks.by_column[label] += 1


def text_columns(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type = ANY(%s)
        ORDER BY table_name, column_name
        """,
        (list(TEXT_TYPES),),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def scan_database(conn: psycopg.Connection[Any], planted: list[Planted]) -> Leaks:
    leaks = Leaks()
    for table, column in text_columns(conn):
        query = sql.SQL("SELECT {}::text FROM {} WHERE {} IS NOT NULL").format(
            sql.Identifier(column), sql.Identifier(table), sql.Identifier(column)
        )
        texts = [r[0] for r in conn.execute(query)]
        find_in_texts(texts, planted, f"{table}.{column}", leaks)
    return leaks


def main() -> None:
    parser = argparse.ArgumentParser(description="planted sample PII found in a database")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    args = parser.parse_args()
    planted = planted_values(args.samples)
    with psycopg.connect(args.database_url) as conn:
        leaks = scan_database(conn, planted)
    sys.stdout.write(json.dumps({"planted": len(planted), **leaks.as_json()}) + "\n")


if __name__ == "__main__":
    main()
