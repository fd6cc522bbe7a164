"""Failures on demand: the next N requests (optionally matching a path) get an error.

A fault may "lose the reply" (``lose_reply``): the request is carried out, then the
error is answered instead of the result, as when a proxy drops the upstream's answer.
A fault may also hold a delay: the response (the error, or with ``status`` 0 the normal
answer) comes that many seconds late, to exercise client time-outs. Fakes that support
delays await :meth:`Faults.pop` and :meth:`Faults.response`; :meth:`Faults.take` ignores
delays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response


@dataclass
class Fault:
    status: int
    count: int
    retry_after: float | None = None
    path_contains: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    lose_reply: bool = False  # carry the request out, then answer the error


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def add_from_spec(self, spec: dict[str, Any], body: dict[str, Any] | None = None) -> None:
        """A fault as an admin request describes it: status, count, retry_after, path,
        delay_s (status 0 with a delay: answer normally, late), lose_reply."""
        self.add(
            Fault(
                status=int(spec.get("status", 429)),
                count=int(spec.get("count", 1)),
                retry_after=spec.get("retry_after"),
                path_contains=spec.get("path_contains", ""),
                body=body or {},
                delay_s=float(spec.get("delay_s", 0.0)),
                lose_reply=bool(spec.get("lose_reply", False)),
            )
        )

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pop(self, request: Request) -> Fault | None:
        """The pending fault that matches this request (one use of it is consumed)."""
        path = request.url.path
        if path.startswith("/_admin"):
            return None
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.path_contains in path:
                    fault.count -= 1
                    self.injected += 1
                    return fault
        return None

    @staticmethod
    def response(fault: Fault) -> Response | None:
        """The error response of a fault (None for a delay-only fault, status 0)."""
        if fault.status == 0:
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        body = fault.body or {"message": f"injected HTTP {fault.status}"}
        return JSONResponse(body, status_code=fault.status, headers=headers)

    def take(self, request: Request) -> Response | None:
        """An error response for this request, if a pending fault matches it."""
        fault = self.pop(request)
        return self.response(fault) if fault is not None else None
