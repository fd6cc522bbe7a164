"""What every benchmark shares: the machine it ran on, percentiles, memory, output.

Each benchmark module has ``run(...) -> dict`` (the figures, JSON-serialisable) and a
``main()`` that prints that dict as one JSON line, so ``bench.run`` can call every one
in a fresh process of its own (memory figures and embedded servers never leak from one
benchmark into the next) and read its result back.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Numbers in one run are comparable only when BLAS does not grab every core behind the
# benchmark's back; benchmarks that want more threads ask for them explicitly.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: the figure is a latency that happened)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds, rounded for reading."""
    return {
        "p50": round(statistics.median(values_ms), 2),
        "p95": round(percentile(values_ms, 95), 2),
        "p99": round(percentile(values_ms, 99), 2),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """The machine a figure belongs to: a number without it means nothing."""
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "os": platform.platform(terse=True),
    }


def machine_line(info: dict[str, Any]) -> str:
    memory = f", {info['memory_gib']} GiB RAM" if info.get("memory_gib") else ""
    return (
        f"{info['cpu']} ({info['arch']}), {info['cores']} cores{memory}, "
        f"Python {info['python']}, {info['os']}"
    )


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its waited-for children (e.g. the PII
    scrubber's worker processes; for children it is the largest single child)."""
    # Linux reports ru_maxrss in KiB.
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def process_memory_mib(pid: int | str = "self") -> dict[str, float]:
    """Resident memory of a process now and at its peak (VmRSS, VmHWM), from /proc
    (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss": fields["VmRSS"], "peak": fields["VmHWM"]}


def emit(result: dict[str, Any]) -> None:
    """The one line ``bench.run`` reads: the last line of stdout is the JSON result."""
    print(json.dumps(result, ensure_ascii=False), flush=True)
