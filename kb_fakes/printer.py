"""A fake Gotenberg print service (HTML → PDF) over real HTTP.

``POST /forms/chromium/convert/html`` takes ``multipart/form-data`` whose ``files`` part
is named ``index.html`` and answers ``application/pdf``: a real, small PDF (drawn with
matplotlib) holding the page's text with the tags stripped. Like Gotenberg it answers
400 with a plain-text reason when the form is not multipart or ``index.html`` is
missing. The form is parsed with the standard library, so the fake needs no multipart
package.

Admin endpoints: ``GET /_admin/requests`` logs every request (status, file names, the
stripped text); ``POST /_admin/faults`` queues failures (``{"status": 503, "count": 2}``,
``{"status": 429, "retry_after": 1}``, ``{"status": 0, "delay_s": 2}``: see faults.py);
``DELETE`` on each clears it.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import io
import re
import textwrap
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from kb_fakes.faults import Faults
from kb_fakes.server import ServerThread

CONVERT_PATH = "/forms/chromium/convert/html"
_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr|/table)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
LINES_PER_PAGE = 48
MAX_PAGES = 5


def html_text(page: str) -> str:
    """The readable text of an HTML page: no head, scripts or tags; one line per block."""
    page = _BREAK.sub("\n", _DROP.sub("", page))
    text = html_lib.unescape(_TAG.sub("", page))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def render_pdf(text: str, title: str = "kb report") -> bytes:
    """A real PDF of ``text`` (A4 pages, wrapped lines; at most :data:`MAX_PAGES`)."""
    # Imported here: matplotlib is slow to import and only this endpoint needs it.
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    lines: list[str] = []
    for line in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(line, 90) or [""])
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": title, "Creator": "kb_fakes printer"}) as pdf:
        for chunk in pages[:MAX_PAGES] or [[]]:
            figure = Figure(figsize=(8.27, 11.69))
            figure.text(0.06, 0.96, "\n".join(chunk), va="top", family="DejaVu Sans", size=9)
            pdf.savefig(figure)
    return buffer.getvalue()


def parse_form(content_type: str, body: bytes) -> list[EmailMessage] | None:
    """The parts of a multipart/form-data body (None when it is not one)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    return [part for part in message.iter_parts() if isinstance(part, EmailMessage)]


@dataclass
class PrintLog:
    """What the fake received (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)


def create_printer_app() -> FastAPI:
    """The fake; ``app.state`` holds ``faults`` and ``log``."""
    app = FastAPI(title="Fake Gotenberg print service")
    faults = Faults()
    log = PrintLog()
    app.state.faults = faults
    app.state.log = log

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        fault = faults.pop(request)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            injected = faults.response(fault)
            if injected is not None:
                log.add({"status": fault.status})
                return injected
        response: Response = await call_next(request)
        return response

    def refuse(reason: str, files: list[str]) -> Response:
        log.add({"status": 400, "files": files})
        return PlainTextResponse(reason, status_code=400)

    @app.post(CONVERT_PATH)
    async def convert(request: Request) -> Response:
        parts = parse_form(request.headers.get("Content-Type", ""), await request.body())
        if parts is None:
            return refuse("Invalid form data: the request is not multipart/form-data", [])
        files = {
            part.get_filename(): part
            for part in parts
            if part.get_param("name", header="content-disposition") == "files"
            and part.get_filename()
        }
        names = sorted(str(name) for name in files)
        page = files.get("index.html")
        if page is None:
            return refuse("Invalid form data: form file 'index.html' is required", names)
        raw = page.get_payload(decode=True)
        if not isinstance(raw, bytes):
            return refuse("Invalid form data: 'index.html' is empty", names)
        text = html_text(raw.decode(page.get_content_charset() or "utf-8", errors="replace"))
        pdf = await asyncio.to_thread(render_pdf, text)
        log.add({"status": 200, "files": names, "text": text, "bytes": len(pdf)})
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": 'attachment; filename="index.pdf"'},
        )

    # -- admin ---------------------------------------------------------------------------
    @app.get("/_admin/requests")
    def admin_requests() -> list[dict[str, Any]]:
        with log.lock:
            return list(log.entries)

    @app.delete("/_admin/requests")
    def admin_clear_requests() -> dict[str, bool]:
        with log.lock:
            log.entries.clear()
        return {"ok": True}

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, bool]:
        spec = await request.json()
        faults.add_from_spec(spec, {"message": f"injected HTTP {spec.get('status', 429)}"})
        return {"ok": True}

    @app.delete("/_admin/faults")
    def admin_clear_faults() -> dict[str, bool]:
        faults.clear()
        return {"ok": True}

    return app


def start_fake_printer(host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """The fake on a loopback port, running (``.url + CONVERT_PATH`` is the endpoint)."""
    return ServerThread(create_printer_app(), host, port).start()
