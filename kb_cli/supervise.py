"""Run a child service (e.g. `dagster dev`) so that stopping `kb` stops it cleanly.

The child gets its own process group. SIGINT/SIGTERM to `kb` are forwarded to that group
as SIGTERM; a child still alive after the grace period is killed. `kb` then returns
normally, so its own clean-up (stopping the embedded PostgreSQL it owns) runs. Without
this, `dagster dev` started from a script ignores SIGINT and can hang on shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType


def run_supervised(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path, grace_s: float = 10.0
) -> int:
    child = subprocess.Popen(list(command), env=dict(env), cwd=cwd, start_new_session=True)
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        _signal_group(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline: float | None = None
    try:
        while True:
            # Short waits, so a signal handled in between can start the grace period.
            try:
                code = child.wait(timeout=0.5)
                return 0 if stopping else code
            except subprocess.TimeoutExpired:
                if stopping and deadline is None:
                    deadline = time.monotonic() + grace_s
                if deadline is not None and time.monotonic() > deadline:
                    _signal_group(child.pid, signal.SIGKILL)
                    child.wait()
                    return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _signal_group(child.pid, signal.SIGKILL)  # leave no grandchildren behind


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
