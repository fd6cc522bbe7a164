"""``POST /pyrus/webhook``: verify, decide, enqueue, acknowledge at once.

The work happens in the bot worker; the route only makes sure an accepted webhook is a
committed job. Order matters: size first (413), then the signature on the raw bytes
(401, nothing stored), then the JSON (400 with the reason). Nothing of the body is
logged: it is a customer's ticket.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from bot_api.body import read_limited
from bot_api.deps import PoolDep, SettingsDep
from bot_api.schemas import Acknowledged
from kb_core.bot import jobs, metrics
from kb_core.bot.webhook import WebhookError, decide, parse_event, valid_signature
from kb_core.sources import configured

log = logging.getLogger(__name__)
router = APIRouter(tags=["pyrus"])


# async: the body is streamed with a limit before anything else; only storing blocks.
@router.post("/pyrus/webhook", response_model=Acknowledged)
async def pyrus_webhook(request: Request, settings: SettingsDep, pool: PoolDep) -> Acknowledged:
    """Pyrus bot webhook: 200 {} once the job is stored (or the webhook is ignored)."""
    try:
        body = await read_limited(request, settings.bot.webhook_max_bytes)
    except HTTPException:
        metrics.WEBHOOKS.labels("too_large").inc()
        raise
    key = settings.pyrus.security_key.get_secret_value() if settings.pyrus.security_key else ""
    if not valid_signature(body, request.headers.get("X-Pyrus-Sig"), key):
        metrics.WEBHOOKS.labels("bad_signature").inc()
        raise HTTPException(401, detail="invalid or missing X-Pyrus-Sig signature")
    try:
        event = parse_event(body, max_depth=settings.bot.max_json_depth)
        decision = decide(
            event,
            configured.bot_ids(settings),
            correction_markers=settings.bot.correction_markers,
            wrong_answer_field=settings.pyrus.bot_wrong_field or None,
            own_ids=configured.own_bot_ids(settings),
            send_commands=settings.bot.send_commands,
            send_field=settings.pyrus.bot_send_field or None,
        )
    except WebhookError:
        # Counted here; answered 400 with its reason by bot_api.errors.
        metrics.WEBHOOKS.labels("bad_request").inc()
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # A shape the validation did not foresee: still the sender's fault, never a 500.
        metrics.WEBHOOKS.labels("bad_request").inc()
        raise HTTPException(400, detail=f"webhook body not usable: {type(exc).__name__}") from exc
    trigger = decision.trigger
    if trigger is None:
        metrics.WEBHOOKS.labels("ignored").inc()
        log.info("webhook for task %s ignored: %s", event.task_id, decision.reason)
        return Acknowledged()

    def store() -> int | None:
        with pool.connection() as conn:
            return jobs.enqueue(conn, event.task_id, decision.comment_id, trigger)

    job_id = await run_in_threadpool(store)
    outcome = "queued" if job_id is not None else "duplicate"
    metrics.WEBHOOKS.labels(outcome).inc()
    log.info("webhook for task %s: %s (%s)", event.task_id, outcome, trigger)
    return Acknowledged()
