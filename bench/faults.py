"""Fault-injection suite: the bot as in production, under the faults it must survive.

Real processes: the embedded PostgreSQL (started detached, so it can be stopped and
started again under the bot), the API (``kb serve --no-worker``) and the job worker
(``kb worker``) each in its own process, the fake Pyrus over HTTP. Webhooks are sent
as Pyrus sends them (signed) and re-sent, as Pyrus does, when the answer is not 200.

Scenarios (each: its events, the tickets answered, duplicate comments, time to answer):

- ``baseline``: tickets with no fault.
- ``db_restart``: PostgreSQL stopped for 5 s under the running bot, a webhook sent while
  it is down (503, re-sent), then a new ticket: time from the restart to its answer.
- ``lost_replies``: Pyrus stores the comment but the reply is lost (502) 1, 2, 3 times.
- ``pyrus_500``: 3 transient 500s on reading the ticket: time to answer.
- ``pyrus_429``: 2 rate-limit answers with a reset header.
- ``kill9``: the worker killed with SIGKILL mid-job, a new worker started.
- ``hostile``: a 1,000,000-character ticket, a ticket with NUL characters, and hostile
  webhook bodies (deep JSON, ids past 2^63-1, wrong types, a non-ASCII signature).
- ``worker_sigterm``: ``kb worker`` stopped with SIGTERM exits 0.

Every scenario fails on a lost ticket, a duplicate comment or any 5xx other than the
503s of the database outage. The exit code is non-zero when one fails or a time target
is missed (a new ticket answered within 30 s of a 5 s database restart; within 15 s
despite 3 transient Pyrus 500s).

    .venv/bin/python -m bench.faults            # table on stdout, JSON with --json PATH
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kb_fakes.server import free_port

LEASE_S = 15  # the suite's lease: kill -9 recovery costs one lease (production: 60 s)
TARGETS = {"db_restart": 30.0, "pyrus_500": 15.0}


@dataclass
class Result:
    scenario: str
    events: str
    tickets: int = 0
    answered: int = 0
    duplicates: int = 0
    server_errors: int = 0  # 5xx answers other than the expected 503s of an outage
    time_to_answer_s: float | None = None  # the scenario's measured ticket
    ok: bool = False
    notes: list[str] = field(default_factory=list)


class Suite:
    def __init__(self, tmp: Path, lease_s: int = LEASE_S) -> None:
        from kb_fakes.services import start_fakes

        self.tmp = tmp
        self.lease_s = lease_s
        self.fakes = start_fakes()
        self.store = self.fakes.pyrus_store
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            **self.fakes.env(),
            "KB_DATA_DIR": str(tmp),
            "KB_BOT_POLL_S": "0.2",
            "KB_BOT_JOB_LEASE_S": str(lease_s),
            "KB_BOT_RETRY_BACKOFF_S": "1",
            "KB_LOG_LEVEL": "WARNING",
        }
        self.kb = [sys.executable, "-m", "kb_cli.main"]
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.http = httpx.Client(timeout=60)
        self._number = 0

    # -- processes --------------------------------------------------------------------
    def _spawn(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{log}.log").open("ab")
        return subprocess.Popen(
            [*self.kb, *args], env=self.env, stdout=out, stderr=out, start_new_session=True
        )

    def db(self, verb: str) -> None:
        subprocess.run([*self.kb, "db", verb], env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        self.db("start")
        self._index()
        self.api = self._spawn("serve", "--no-worker", "--port", str(self.port), log="api")
        self.worker = self._spawn("worker", log="worker")
        self._wait(lambda: self._get("/readyz") == 200, 180, "the API to be ready")

    def stop(self) -> None:
        for process in (self.api, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        self.fakes.stop()
        subprocess.run([*self.kb, "db", "stop"], env=self.env, capture_output=True)

    def _index(self) -> None:
        """The sample articles indexed and promoted, without Dagster (as the bot
        benchmark does): the suite is about the bot, not the pipeline."""
        from kb_core.db import connect
        from kb_core.embeddings import make_embedder
        from kb_core.index.documents import sync_source
        from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
        from kb_core.index.versions import promote
        from kb_core.settings import PROJECT_ROOT, Settings
        from kb_core.sources.files import iter_files
        from kb_core.text.chunking import ChunkerConfig

        url = self.database_url()
        settings = Settings.from_env(None, runtime={"data_dir": self.tmp})
        with connect(url) as conn:
            sync_source(conn, "files", list(iter_files(PROJECT_ROOT / "samples" / "kb_files")))
            convert_pending(conn)
            chunk_pending(conn, ChunkerConfig())
            embed_pending(conn, make_embedder(settings.embedding.provider, settings=settings))
            promote(conn, require_pii_check=False)

    def database_url(self) -> str:
        from kb_core.db import embedded, with_dbname

        uri = embedded.running_uri(self.tmp)
        assert uri is not None, "the embedded server is not running"
        return with_dbname(uri, "kb")

    def _get(self, path: str) -> int | None:
        try:
            return self.http.get(f"http://127.0.0.1:{self.port}{path}", timeout=5).status_code
        except httpx.HTTPError:
            return None

    @staticmethod
    def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"timed out waiting for {what}")

    # -- tickets and webhooks ------------------------------------------------------------
    def ticket(self, description: str | None = None) -> int:
        self._number += 1
        subject = f"Не приходят письма о новых задачах ({self._number})"
        text = description or "Коллегам уведомления на почту приходят, а мне перестали."
        task = self.store.create_task(
            {
                "form_id": 321,
                "subject": subject,
                "fields": [
                    {"id": 1, "code": "u_subject", "type": "text", "value": subject},
                    {"id": 2, "code": "u_description", "type": "text", "value": text},
                ],
                "text": text[:2000],
            }
        )
        return int(task["id"])

    def webhook(self, task_id: int, *, attempts: int = 8, pause_s: float = 2.0) -> list[int]:
        """Send the task's webhook like Pyrus: re-sent while the answer is not 200 (Pyrus
        waits 61 s and 122 s; the suite, a couple of seconds). Returns every status."""
        statuses: list[int] = []
        for _ in range(attempts):
            answer = self.http.post(
                f"{self.fakes.pyrus.url}/_admin/webhook",
                json={"task_id": task_id, "url": f"http://127.0.0.1:{self.port}/pyrus/webhook"},
            ).json()
            statuses.append(int(answer["status"]))
            if statuses[-1] == 200:
                break
            time.sleep(pause_s)
        return statuses

    def comments(self, task_id: int) -> int:
        with self.store.lock:
            return sum(1 for p in self.store.posted if p["task_id"] == task_id)

    def answered(self, task_id: int, timeout: float = 90) -> float | None:
        """Seconds until the task got its comment (None: never)."""
        started = time.monotonic()
        try:
            self._wait(lambda: self.comments(task_id) > 0, timeout, f"task {task_id}")
        except TimeoutError:
            return None
        return time.monotonic() - started

    def fault(self, **spec: Any) -> None:
        self.http.post(f"{self.fakes.pyrus.url}/_admin/faults", json=spec).raise_for_status()

    def settle(self, task_ids: list[int], result: Result, seconds: float = 2.0) -> None:
        """Count answers and duplicates after late retries had time to show."""
        time.sleep(seconds)
        result.tickets += len(task_ids)
        result.answered += sum(self.comments(t) > 0 for t in task_ids)
        result.duplicates += sum(max(0, self.comments(t) - 1) for t in task_ids)


def _errors(statuses: list[int], allowed: frozenset[int] = frozenset()) -> int:
    return sum(1 for s in statuses if s >= 500 and s not in allowed)


@contextmanager
def _scenario(name: str, events: str, results: list[Result]) -> Iterator[Result]:
    result = Result(name, events)
    started = time.monotonic()
    try:
        yield result
    except Exception as exc:  # a scenario that breaks is a failed scenario, not a crash
        result.notes.append(f"{type(exc).__name__}: {exc}")
    result.ok = (
        not result.notes
        and result.answered == result.tickets
        and result.duplicates == 0
        and result.server_errors == 0
    )
    target = TARGETS.get(name)
    if target is not None and (result.time_to_answer_s is None or result.time_to_answer_s > target):
        result.ok = False
        result.notes.append(f"time to answer over the {target:.0f} s target")
    result.notes.append(f"scenario took {time.monotonic() - started:.1f} s")
    results.append(result)


def baseline(suite: Suite, results: list[Result]) -> None:
    with _scenario("baseline", "3 tickets, no fault", results) as r:
        tasks = [suite.ticket() for _ in range(3)]
        for task in tasks:
            r.server_errors += _errors(suite.webhook(task))
        r.time_to_answer_s = max(suite.answered(t) or 1e9 for t in tasks)
        suite.settle(tasks, r)


def db_restart(suite: Suite, results: list[Result]) -> None:
    with _scenario("db_restart", "PostgreSQL stopped 5 s; 1 webhook while down", results) as r:
        suite.db("stop")
        stopped = time.monotonic()
        during = suite.ticket()
        first = suite.http.post(
            f"{suite.fakes.pyrus.url}/_admin/webhook",
            json={"task_id": during, "url": f"http://127.0.0.1:{suite.port}/pyrus/webhook"},
        ).json()["status"]
        if first != 503:
            r.notes.append(f"webhook while the database is down answered {first}, not 503")
        time.sleep(max(0.0, 5.0 - (time.monotonic() - stopped)))
        suite.db("start")
        restarted = time.monotonic()
        fresh = suite.ticket()
        r.server_errors += _errors(suite.webhook(fresh, attempts=15, pause_s=1.0))
        r.server_errors += _errors(suite.webhook(during, attempts=15, pause_s=1.0))
        answered = suite.answered(fresh, timeout=60)
        r.time_to_answer_s = None if answered is None else time.monotonic() - restarted
        suite.answered(during, timeout=60)
        suite.settle([during, fresh], r)
        if suite.worker is not None and suite.worker.poll() is not None:
            r.notes.append(f"the worker exited ({suite.worker.returncode})")


def lost_replies(suite: Suite, results: list[Result]) -> None:
    with _scenario("lost_replies", "comment stored, reply lost (502) ×1, ×2, ×3", results) as r:
        tasks = []
        for lost in (1, 2, 3):
            task = suite.ticket()
            suite.fault(
                status=502, count=lost, path_contains=f"/tasks/{task}/comments", lose_reply=True
            )
            r.server_errors += _errors(suite.webhook(task))
            tasks.append(task)
        r.time_to_answer_s = max(suite.answered(t) or 1e9 for t in tasks)
        suite.settle(tasks, r, seconds=5.0)


def pyrus_500(suite: Suite, results: list[Result]) -> None:
    with _scenario("pyrus_500", "3 transient 500s reading the ticket", results) as r:
        task = suite.ticket()
        suite.fault(status=500, count=3, path_contains=f"/v4/tasks/{task}")
        r.server_errors += _errors(suite.webhook(task))
        r.time_to_answer_s = suite.answered(task, timeout=60)
        suite.settle([task], r)


def pyrus_429(suite: Suite, results: list[Result]) -> None:
    with _scenario("pyrus_429", "2 × 429 with Retry-After 2 s", results) as r:
        task = suite.ticket()
        suite.fault(status=429, count=2, retry_after=2, path_contains=f"/v4/tasks/{task}")
        r.server_errors += _errors(suite.webhook(task))
        r.time_to_answer_s = suite.answered(task, timeout=60)
        suite.settle([task], r)


def kill9(suite: Suite, results: list[Result]) -> None:
    with _scenario(
        "kill9", f"worker SIGKILLed mid-job, restarted (lease {suite.lease_s} s)", results
    ) as r:
        task = suite.ticket()
        suite.fault(status=0, delay_s=20, count=1, path_contains=f"/v4/tasks/{task}")
        r.server_errors += _errors(suite.webhook(task))
        url = suite.database_url()
        import psycopg

        def running() -> bool:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT status FROM bot_jobs WHERE task_id = %s", (task,)
                ).fetchone()
            return row is not None and row[0] == "running"

        suite._wait(running, 60, "the job to be running")
        assert suite.worker is not None
        killed = time.monotonic()
        os.killpg(suite.worker.pid, signal.SIGKILL)
        suite.worker.wait(timeout=10)
        suite.worker = suite._spawn("worker", log="worker")
        suite.answered(task, timeout=suite.lease_s + 60)
        r.time_to_answer_s = time.monotonic() - killed if suite.comments(task) else None
        suite.settle([task], r, seconds=3.0)


def hostile(suite: Suite, results: list[Result]) -> None:
    from kb_fakes.pyrus import BOT_SECURITY_KEY, sign

    with _scenario(
        "hostile", "1,000,000-char ticket, NUL ticket, 8 hostile webhook bodies", results
    ) as r:
        huge = suite.ticket("Не приходят письма. " + "очень длинное описание " * 43_500)
        nul = suite.ticket("Не приходят\x00 письма\x00 о задачах\x07")
        for task in (huge, nul):
            r.server_errors += _errors(suite.webhook(task))
        endpoint = f"http://127.0.0.1:{suite.port}/pyrus/webhook"
        base = {"event": "comment", "task_id": 1, "task": {"id": 1, "comments": []}}
        bodies = [
            b'{"a":' * 2000 + b"1" + b"}" * 2000,
            json.dumps(base | {"task_id": 2**63, "task": {"id": 2**63}}).encode(),
            json.dumps(base | {"task": {"id": 1, "comments": [{"id": "abc"}]}}).encode(),
            json.dumps(base | {"task": {"id": 1, "comments": [{"id": None}]}}).encode(),
            json.dumps(
                base | {"task": {"id": 1, "comments": [{"id": 1, "author": {"id": [1]}}]}}
            ).encode(),
            json.dumps(base | {"task": {"id": 1, "fields": [1], "comments": [{"id": 1}]}}).encode(),
            json.dumps(
                base | {"task": {"id": 1, "comments": [{"id": 1, "field_updates": ["x"]}]}}
            ).encode(),
        ]
        statuses = []
        for body in bodies:
            answer = suite.http.post(
                endpoint,
                content=body,
                headers={"X-Pyrus-Sig": sign(body, BOT_SECURITY_KEY)},
            )
            statuses.append(answer.status_code)
        unsigned = suite.http.post(
            endpoint, content=b"{}", headers={"X-Pyrus-Sig": "подпись".encode()}
        )
        statuses.append(unsigned.status_code)
        r.server_errors += _errors(statuses)
        if any(s not in (400, 401) for s in statuses):
            r.notes.append(f"hostile bodies answered {statuses}")
        r.time_to_answer_s = max(suite.answered(t, timeout=120) or 1e9 for t in (huge, nul))
        suite.settle([huge, nul], r)
        import psycopg

        with psycopg.connect(suite.database_url()) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM bot_interactions WHERE task_id = ANY(%s)", ([huge, nul],)
            ).fetchone()
        if stored is None or stored[0] != 2:
            r.notes.append("an interaction record is missing")


def worker_sigterm(suite: Suite, results: list[Result]) -> None:
    with _scenario("worker_sigterm", "kb worker stopped with SIGTERM, restarted", results) as r:
        assert suite.worker is not None
        suite.worker.send_signal(signal.SIGTERM)
        code = suite.worker.wait(timeout=60)
        if code != 0:
            r.notes.append(f"kb worker exited {code} on SIGTERM")
        suite.worker = suite._spawn("worker", log="worker")
        task = suite.ticket()
        r.server_errors += _errors(suite.webhook(task))
        r.time_to_answer_s = suite.answered(task, timeout=90)
        suite.settle([task], r)


SCENARIOS: dict[str, Callable[[Suite, list[Result]], None]] = {
    "baseline": baseline,
    "db_restart": db_restart,
    "lost_replies": lost_replies,
    "pyrus_500": pyrus_500,
    "pyrus_429": pyrus_429,
    "kill9": kill9,
    "hostile": hostile,
    "worker_sigterm": worker_sigterm,
}


def run(names: list[str] | None = None, lease_s: int = LEASE_S) -> list[Result]:
    """Every scenario (or ``names``) against one stack; ``lease_s`` is the bot jobs' lease,
    what recovering a SIGKILLed worker's job waits for."""
    results: list[Result] = []
    # A short path: the server's Unix socket lives in the data dir (108-byte limit).
    with tempfile.TemporaryDirectory(prefix="kbf-", dir="/tmp") as tmp:
        suite = Suite(Path(tmp), lease_s)
        try:
            suite.start()
            for name in names or list(SCENARIOS):
                SCENARIOS[name](suite, results)
        finally:
            suite.stop()
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | events | answered | duplicates | 5xx | time to answer | ok |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        seconds = "—" if r.time_to_answer_s is None else f"{r.time_to_answer_s:.1f} s"
        lines.append(
            f"| {r.scenario} | {r.events} | {r.answered}/{r.tickets} | {r.duplicates} | "
            f"{r.server_errors} | {seconds} | {'yes' if r.ok else 'NO: ' + '; '.join(r.notes)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()] or None
    results = run(names)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2), "utf-8")
    if not all(r.ok for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
