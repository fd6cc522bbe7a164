"""The holdout: a share of new tickets on which the bot posts nothing.

Assignment is a pure function of the ticket id (SHA-256 of a fixed salt and the id,
read as a number in [0, 1)), so it is reproducible anywhere (the webhook, a report, a
test) and independent of arrival order, the agent, the category or the time. It is
recorded once per ticket in ``ticket_arms`` at the bot's first job for the ticket; the
recorded arm is what counts afterwards, so changing the share or switching the holdout
off later moves no ticket between arms and the history stays as it was measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

Arm = Literal["assisted", "holdout"]
#: Changing the salt would reshuffle every future ticket; it is part of the design.
SALT = "kb-holdout-v1"
_SCALE = float(2**64)


def holdout_point(task_id: int) -> float:
    """The ticket's fixed point in [0, 1): below the share means holdout."""
    digest = hashlib.sha256(f"{SALT}:{int(task_id)}".encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_holdout(task_id: int, share: float) -> bool:
    return holdout_point(task_id) < share


@dataclass(frozen=True)
class HoldoutPolicy:
    """KB_EFFECT_HOLDOUT_ENABLED and KB_EFFECT_HOLDOUT_SHARE."""

    enabled: bool
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"holdout share must be within 0..1, not {self.share}")


def ticket_arm(
    conn: psycopg.Connection[Any], task_id: int, policy: HoldoutPolicy, *, assign: bool = True
) -> Arm | None:
    """The ticket's arm: the recorded one if any, else (``assign``: a new ticket) assigned
    now and recorded.

    None when the ticket has no recorded arm and gets none: the holdout is off, or the
    ticket is older than the holdout (a mention on it). Such tickets are simply assisted
    and stay out of the controlled comparison (they were not randomised).
    """
    row = conn.execute("SELECT arm FROM ticket_arms WHERE task_id = %s", (task_id,)).fetchone()
    if row is not None:
        return "holdout" if row[0] == "holdout" else "assisted"
    if not policy.enabled or not assign:
        return None
    arm: Arm = "holdout" if in_holdout(task_id, policy.share) else "assisted"
    conn.execute(
        """
        INSERT INTO ticket_arms (task_id, arm, holdout_share) VALUES (%s, %s, %s)
        ON CONFLICT (task_id) DO NOTHING
        """,
        (task_id, arm, policy.share),
    )
    # Another worker may have recorded it first: the stored arm wins.
    stored = conn.execute("SELECT arm FROM ticket_arms WHERE task_id = %s", (task_id,)).fetchone()
    return "holdout" if stored is not None and stored[0] == "holdout" else "assisted"


def bot_stays_silent(
    conn: psycopg.Connection[Any], task_id: int, trigger: str, policy: HoldoutPolicy | None
) -> bool:
    """Whether the bot must post nothing on this job's ticket: the one check the worker
    makes before answering. A new ticket is assigned its arm here; a mention follows the
    ticket's recorded arm (agents asking the bot on a holdout ticket would undo the
    comparison). Corrections are not answers to the customer and are always filed. With
    the holdout off, nothing is held out, and the recorded arms stay as they were.
    """
    if policy is None or not policy.enabled or trigger not in ("new_ticket", "mention"):
        return False
    return ticket_arm(conn, task_id, policy, assign=trigger == "new_ticket") == "holdout"
