"""Stopping a supervised service: the signal reaches its whole process group."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest


def _wait_for(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.integration  # starts a process
def test_sigterm_stops_a_child_that_ignores_it(tmp_path: Path):
    # The child ignores SIGTERM (as a hanging `dagster dev` effectively does) and has a
    # grandchild; both must be gone after the grace period, and the supervisor exits 0.
    pids = tmp_path / "pids"
    child = textwrap.dedent(
        f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(str(grandchild.pid))
        time.sleep(600)
        """
    )
    supervisor = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from kb_cli.supervise import run_supervised
        code = run_supervised([sys.executable, "-c", {child!r}], env=os.environ,
                              cwd=Path("."), grace_s=1.0)
        print("exit", code)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", supervisor], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    _wait_for(pids)
    grandchild = int(pids.read_text())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "exit 0" in out
    time.sleep(0.2)
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


@pytest.mark.integration  # starts a process
def test_child_exit_code_is_returned(tmp_path: Path):
    from kb_cli.supervise import run_supervised

    code = run_supervised(
        [sys.executable, "-c", "raise SystemExit(3)"], env=os.environ, cwd=tmp_path
    )
    assert code == 3
