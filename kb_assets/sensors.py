"""Sensors: approved corrections reach the index within minutes; failures reach people.

``corrections_sensor`` polls the «Актуализация RAG» form every KB_CORRECTIONS_POLL_S
seconds and, when Pyrus holds approved corrections the knowledge base does not (new,
changed or withdrawn), starts ``corrections_refresh``: the corrections source and
everything downstream of it, through scrubbing, embedding, evaluation and promotion,
without waiting for the nightly run. The run key is the pending set itself, so a change
starts one run however often the sensor asks, and a refused candidate is not retried in
a loop.

``notify_run_failures`` tells the messenger about every failed run, except a run that
failed only because promotion was refused: that one was already announced, with its
reasons, as a blocked promotion.
"""

import hashlib
import json

import dagster as dg
from pydantic import BaseModel

from kb_assets.resources import DatabaseResource, NotificationsResource, PyrusResource
from kb_assets.sources import kb_corrections, source_event_updates
from kb_core.notify import run_failure_text, title
from kb_core.settings import EventSettings, ScheduleSettings, Settings, default_of
from kb_core.sources import configured
from kb_core.sources.events import pending_events
from kb_core.sources.pyrus_sync import corrections_pending

corrections_refresh = dg.define_asset_job(
    "corrections_refresh",
    selection=dg.AssetSelection.assets(kb_corrections).downstream(),
    description="Approved corrections through scrubbing, indexing, evaluation, promotion.",
)

# Steps whose failure means "promotion refused", announced by the steps themselves.
PROMOTION_STEPS = ("promoted_index", "candidate_passes_eval")
MAX_ERROR_CHARS = 500


def _default(group: type[BaseModel], name: str) -> int:
    default: int = default_of(group, name)
    return default


def corrections_sensor_every(seconds: int) -> dg.SensorDefinition:
    """corrections_sensor polling every ``seconds`` (KB_CORRECTIONS_POLL_S)."""
    return dg.sensor(
        job=corrections_refresh,
        name="corrections_sensor",
        minimum_interval_seconds=seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts corrections_refresh when approved corrections are not yet indexed.",
    )(_corrections_sensor)


def _corrections_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource, pyrus: PyrusResource
) -> dg.RunRequest | dg.SkipReason:
    settings = pyrus.settings
    form_id = settings.pyrus.corrections_form_id
    if not pyrus.enabled or form_id is None:
        return dg.SkipReason("corrections form not configured (KB_PYRUS_CORRECTIONS_FORM_ID)")
    with pyrus.client() as client, database.connection() as conn:
        pending = corrections_pending(
            conn, client, form_id, configured.correction_builder(settings)
        )
    if not pending:
        return dg.SkipReason("every approved correction is indexed")
    key = hashlib.sha256(json.dumps(pending, sort_keys=True).encode()).hexdigest()[:16]
    context.log.info(f"corrections to ingest: {', '.join(pending)}")
    return dg.RunRequest(
        run_key=f"corrections-{key}",
        tags={"kb/trigger": "corrections", "kb/corrections": ",".join(pending)[:200]},
    )


events_refresh = dg.define_asset_job(
    "events_refresh",
    selection=dg.AssetSelection.assets(source_event_updates).downstream(),
    description="Pages and tickets named by source events through scrubbing, indexing, "
    "evaluation and promotion.",
)


def source_events_sensor_every(seconds: int) -> dg.SensorDefinition:
    """source_events_sensor polling every ``seconds`` (KB_EVENTS_POLL_S)."""
    return dg.sensor(
        job=events_refresh,
        name="source_events_sensor",
        minimum_interval_seconds=seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts events_refresh when webhooks left source events pending.",
    )(_source_events_sensor)


def _source_events_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.RunRequest | dg.SkipReason:
    with database.connection() as conn:
        pending = pending_events(conn)
    if not pending:
        return dg.SkipReason("no pending source events")
    # The newest pending id is the key: new events start a new run, a tick that sees the
    # same events (their run still going) does not start another.
    newest = max(event_id for event_id, _ in pending)
    context.log.info(f"{len(pending)} source events pending (newest {newest})")
    return dg.RunRequest(
        run_key=f"events-{newest}", tags={"kb/trigger": "events", "kb/events": str(len(pending))}
    )


@dg.run_failure_sensor(
    name="notify_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed pipeline runs to the corporate messenger (KB_NOTIFY_WEBHOOK_URL).",
)
def notify_run_failures(
    context: dg.RunFailureSensorContext, notifications: NotificationsResource
) -> None:
    failures = context.get_step_failure_events()
    steps = sorted({e.step_key for e in failures if e.step_key})
    if steps and all(any(p in step for p in PROMOTION_STEPS) for step in steps):
        return
    # The steps' own errors say what went wrong (the innermost cause: Dagster wraps the
    # user's exception); the run's event only lists the steps.
    errors = []
    for event in failures:
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None and error.message.strip():
            errors.append(error.message.strip().splitlines()[-1])
    message = ("; ".join(errors) or context.failure_event.message or "")[:MAX_ERROR_CHARS]
    notifications.send(
        "run_failure",
        title("run_failure"),
        run_failure_text(context.dagster_run.job_name, context.dagster_run.run_id, steps, message),
    )


# With the default intervals; kb_assets.definitions builds them from the settings.
corrections_sensor = corrections_sensor_every(_default(ScheduleSettings, "corrections_poll_s"))
source_events_sensor = source_events_sensor_every(_default(EventSettings, "poll_s"))


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The sensors polling at the configured intervals."""
    return [
        corrections_sensor_every(settings.schedule.corrections_poll_s),
        source_events_sensor_every(settings.events.poll_s),
        notify_run_failures,
    ]


SENSORS = [corrections_sensor, source_events_sensor, notify_run_failures]
JOBS = [corrections_refresh, events_refresh]
