"""The second scan: chunks about to be served must hold no personal data.

Run after scrubbing and chunking, on every chunk not yet checked (its text, title and
headings), with the independent verifier (kb_core.pii.verifier), not the scrubber: a
miss of one must be a catch of the other. It guards against scrubbing being switched
off or broken, recognisers that stop recognising, configuration drift, and bugs in how
scrubbed text is cut and stored. Clean chunks are marked as checked;
flagged ones are not, so the check fails again until the cause is fixed. Results hold
counts, types and chunk ids, never the values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from kb_core.ops.counters import bump


class _Found(Protocol):
    @property
    def kind(self) -> str: ...


class Scanner(Protocol):
    def scan(self, text: str) -> Sequence[_Found]: ...


@dataclass
class PiiCheckResult:
    scanned: int = 0
    flagged_chunks: dict[int, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.flagged_chunks

    @property
    def counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for kinds in self.flagged_chunks.values():
            total.update(kinds)
        return dict(total)


def check_unchecked_chunks(
    conn: psycopg.Connection[Any], scanner: Scanner, *, batch_size: int = 200
) -> PiiCheckResult:
    result = PiiCheckResult()
    after = 0
    while True:
        rows = conn.execute(
            "SELECT id, concat_ws(E'\\n', title, array_to_string(heading_path, E'\\n'), text) "
            "FROM chunks WHERE pii_checked_at IS NULL AND id > %s "
            "ORDER BY id LIMIT %s",
            (after, batch_size),
        ).fetchall()
        if not rows:
            _count(conn, result)
            return result
        clean = []
        for chunk_id, text in rows:
            findings = scanner.scan(text)
            if findings:
                result.flagged_chunks[chunk_id] = [f.kind for f in findings]
            else:
                clean.append(chunk_id)
        result.scanned += len(rows)
        if clean:
            conn.execute("UPDATE chunks SET pii_checked_at = now() WHERE id = ANY(%s)", (clean,))
        after = rows[-1][0]


def _count(conn: psycopg.Connection[Any], result: PiiCheckResult) -> None:
    """The check's outcome and findings by type, for the bot's /metrics (the check runs
    in a pipeline process nothing scrapes)."""
    bump(conn, "kb_pipeline_pii_checks", {"outcome": "passed" if result.passed else "failed"})
    for entity, count in sorted(result.counts.items()):
        bump(conn, "kb_pipeline_pii_findings", {"entity": entity}, count)
