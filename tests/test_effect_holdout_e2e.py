"""The holdout end to end: fake Pyrus → signed webhook → job → worker. A holdout ticket
gets no bot comment; an assisted one does; both arms are recorded with the ticket."""

from __future__ import annotations

import pytest

from kb_core.db import Database
from kb_core.effect.holdout import in_holdout
from kb_fakes.services import FakeServices
from tests.test_bot_e2e import (  # noqa: F401  (fixtures used by name)
    DESCRIPTION,
    SUBJECT,
    _bot_comments,
    _webhook,
    bot_env,
    bot_url,
    wait_for,
    worker,
)

# The bot's fixtures start from the sample articles.
pytestmark = pytest.mark.from_samples

SHARE = 0.1


@pytest.fixture
def bot_overrides() -> dict[str, str]:
    """The holdout on, for bot_env (tests/test_bot_e2e.py)."""
    return {"KB_EFFECT_HOLDOUT_ENABLED": "true", "KB_EFFECT_HOLDOUT_SHARE": str(SHARE)}


def _ticket(fakes: FakeServices, task_id: int) -> int:
    task = fakes.pyrus_store.create_task(
        {
            "id": task_id,
            "form_id": 321,
            "subject": SUBJECT,
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": SUBJECT},
                {"id": 2, "code": "u_description", "type": "text", "value": DESCRIPTION},
            ],
            "text": DESCRIPTION,
        }
    )
    return int(task["id"])


def _job_status(database: Database, task_id: int) -> str | None:
    with database.connection() as conn:
        row = conn.execute(
            "SELECT status FROM bot_jobs WHERE task_id = %s ORDER BY id DESC LIMIT 1", (task_id,)
        ).fetchone()
    return str(row[0]) if row else None


def _jobs_done(database: Database, task_id: int) -> int:
    with database.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM bot_jobs WHERE task_id = %s AND status = 'done'", (task_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_holdout_ticket_gets_no_bot_comment(fakes, bot_url, worker, database):  # noqa: F811
    start = max(fakes.pyrus_store.tasks) + 1000
    held = next(i for i in range(start, start + 10_000) if in_holdout(i, SHARE))
    helped = next(i for i in range(start, start + 10_000) if not in_holdout(i, SHARE))
    for task_id in (held, helped):
        assert _ticket(fakes, task_id) == task_id
        assert _webhook(fakes, task_id, bot_url)["status"] == 200
    wait_for(lambda: _bot_comments(fakes, helped))
    wait_for(lambda: _job_status(database, held) == "done")
    assert _bot_comments(fakes, held) == []
    assert len(_bot_comments(fakes, helped)) == 1
    # An agent's mention of the bot on the holdout ticket gets no answer either.
    store = fakes.pyrus_store
    store.add_comment(
        held, {"id": 1104, "type": "user"}, {"text": "Бот, подскажи", "mentions": [store.bot_id]}
    )
    assert _webhook(fakes, held, bot_url)["status"] == 200
    wait_for(lambda: _jobs_done(database, held) == 2)
    assert _bot_comments(fakes, held) == []
    with database.connection() as conn:
        arms = dict(conn.execute("SELECT task_id, arm FROM ticket_arms").fetchall())
        answered = conn.execute(
            "SELECT count(*) FROM bot_interactions WHERE task_id = %s", (held,)
        ).fetchone()
    assert arms == {held: "holdout", helped: "assisted"}
    assert answered == (0,)
