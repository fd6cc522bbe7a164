"""The bot's durable job queue in PostgreSQL.

A webhook is acknowledged only after its job is committed, so nothing accepted is lost;
the dedupe key (task id + last comment id) makes Pyrus' retries no-ops. Workers claim
with FOR UPDATE SKIP LOCKED and hold a lease: a worker that dies mid-job (kill -9)
leaves a running job whose lease expires, and the next claim takes it again. Failures
retry with exponential backoff and end in the visible ``dead`` state with the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class Job:
    id: int
    task_id: int
    comment_id: int | None
    trigger: str
    attempts: int  # including the current one
    created_at: datetime


def dedupe_key(task_id: int, comment_id: int | None, trigger: str = "") -> str:
    """One job per (task, comment), and one new-ticket answer per task: Pyrus stamps
    comments to the second, so a second comment written in the ticket's first second
    also reads as "created with the task" and must not be answered again."""
    if trigger == "new_ticket":
        return f"{task_id}:0"
    return f"{task_id}:{comment_id or 0}"


def enqueue(
    conn: psycopg.Connection[Any], task_id: int, comment_id: int | None, trigger: str
) -> int | None:
    """The new job's id, or None when this (task, comment) already has one."""
    row = conn.execute(
        """
        INSERT INTO bot_jobs (dedupe_key, task_id, comment_id, trigger)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
        """,
        (dedupe_key(task_id, comment_id, trigger), task_id, comment_id, trigger),
    ).fetchone()
    return int(row[0]) if row else None


def claim(conn: psycopg.Connection[Any], worker: str, lease_s: float) -> Job | None:
    """Take the oldest ready job (queued and due, or running with an expired lease)."""
    row = conn.execute(
        """
        UPDATE bot_jobs SET status = 'running', attempts = attempts + 1, worker = %(worker)s,
               lease_until = now() + make_interval(secs => %(lease)s), updated_at = now()
        WHERE id = (
            SELECT id FROM bot_jobs
            WHERE (status = 'queued' AND run_after <= now())
               OR (status = 'running' AND lease_until < now())
            ORDER BY run_after, id
            FOR UPDATE SKIP LOCKED
            LIMIT 1
        )
        RETURNING id, task_id, comment_id, trigger, attempts, created_at
        """,
        {"worker": worker, "lease": lease_s},
    ).fetchone()
    return Job(*row) if row else None


def renew_lease(conn: psycopg.Connection[Any], job: Job, worker: str, lease_s: float) -> bool:
    """Extend the lease of a job this worker still holds."""
    row = conn.execute(
        """
        UPDATE bot_jobs SET lease_until = now() + make_interval(secs => %s), updated_at = now()
        WHERE id = %s AND status = 'running' AND worker = %s
        RETURNING id
        """,
        (lease_s, job.id, worker),
    ).fetchone()
    return row is not None


def release(conn: psycopg.Connection[Any], job: Job, worker: str) -> int:
    """Hand a job this worker holds back to the queue at once (graceful shutdown); the
    attempt does not count. Returns 1 when released."""
    row = conn.execute(
        """
        UPDATE bot_jobs SET status = 'queued', lease_until = NULL, worker = NULL,
               attempts = greatest(attempts - 1, 0), run_after = now(), updated_at = now()
        WHERE id = %s AND status = 'running' AND worker = %s
        RETURNING id
        """,
        (job.id, worker),
    ).fetchone()
    return 1 if row else 0


def complete(conn: psycopg.Connection[Any], job: Job) -> None:
    conn.execute(
        """
        UPDATE bot_jobs SET status = 'done', lease_until = NULL, last_error = NULL,
               finished_at = now(), updated_at = now()
        WHERE id = %s
        """,
        (job.id,),
    )


def fail(
    conn: psycopg.Connection[Any],
    job: Job,
    error: str,
    *,
    max_attempts: int,
    backoff_s: float,
) -> str:
    """Schedule a retry after ``backoff_s * 2**(attempts-1)`` or, out of attempts, mark
    the job dead. Returns the new status."""
    dead = job.attempts >= max_attempts
    delay = backoff_s * 2 ** (job.attempts - 1)
    row = conn.execute(
        """
        UPDATE bot_jobs SET status = %(status)s, last_error = %(error)s, lease_until = NULL,
               run_after = now() + make_interval(secs => %(delay)s), updated_at = now(),
               finished_at = CASE WHEN %(status)s = 'dead' THEN now() END
        WHERE id = %(id)s
        RETURNING status
        """,
        {
            "status": "dead" if dead else "queued",
            "error": error[:2000],
            "delay": delay,
            "id": job.id,
        },
    ).fetchone()
    return str(row[0]) if row else "missing"


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Jobs per status (for /metrics and the CLI)."""
    rows = conn.execute("SELECT status, count(*) FROM bot_jobs GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}
