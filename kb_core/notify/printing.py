"""Reports as PDF through the corporate print service, with HTML as the local fallback.

The print service speaks Gotenberg's API (``POST /forms/chromium/convert/html``, a
multipart form whose ``files`` part is ``index.html``; the answer is the PDF). Reports are
HTML first: :func:`write_report` always writes the HTML and adds the PDF when a print
service is configured and works, so an outage of that service costs the PDF, never the
report.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from kb_core.errors import KbError
from kb_core.notify.http import RetriedPost
from kb_core.openai_compat import TransientError, error_message

if TYPE_CHECKING:
    from kb_core.settings import Settings

log = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF"


class PrintError(KbError):
    """The print service did not turn the HTML into a PDF."""


def reports_dir(settings: Settings) -> Path:
    """Where reports go: KB_REPORTS_DIR, else KB_DATA_DIR/reports."""
    return settings.effect.reports_dir or settings.runtime.data_dir / "reports"


def _safe_url(url: str) -> str:
    """The endpoint for messages: no user:password, no query (either may hold a token)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


class PrintService(RetriedPost):
    """HTML → PDF through a Gotenberg-compatible endpoint (thread-safe; reuse one)."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 60.0,
        *,
        max_retries: int = 2,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            setting="KB_PRINT_SERVICE_URL",
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            sleep=sleep,
            transport=transport,
        )
        self.where = _safe_url(url)

    @classmethod
    def from_settings(cls, settings: Settings) -> PrintService | None:
        """The configured print service, or None when KB_PRINT_SERVICE_URL is unset."""
        url = (settings.notify.print_service_url or "").strip()
        if not url:
            return None
        return cls(url, settings.notify.print_timeout_s)

    def to_pdf(self, html: str) -> bytes:
        """The PDF of a self-contained HTML page; :class:`PrintError` when the service
        fails after the retries, refuses the page or answers with something not a PDF."""
        try:
            return self._with_retries(f"print service {self.where}", lambda: self._print(html))
        except TransientError as exc:
            raise PrintError(f"print service {self.where} still failing: {exc}") from None

    def _print(self, html: str) -> bytes:
        files = {"files": ("index.html", html.encode("utf-8"), "text/html; charset=utf-8")}
        response = self._post(files=files)
        status = response.status_code
        if status != 200:
            raise PrintError(
                f"print service {self.where} refused the page: HTTP {status}: "
                f"{error_message(response)}; check KB_PRINT_SERVICE_URL (the full endpoint, "
                "e.g. …/forms/chromium/convert/html)"
            )
        if not response.content.startswith(PDF_MAGIC):
            kind = response.headers.get("Content-Type", "no content type")
            raise PrintError(
                f"print service {self.where} answered 200 but not with a PDF "
                f"({kind}, {len(response.content)} bytes)"
            )
        return response.content


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote; ``error`` says why a configured PDF is missing."""

    html_path: Path
    pdf_path: Path | None = None
    error: str | None = None


def write_report(html: str, out_dir: Path, stem: str, printer: PrintService | None) -> ReportFiles:
    """Write ``<stem>.html`` and, with a working print service, ``<stem>.pdf``.

    Files are replaced atomically, so a reader never sees half a report. When printing
    fails the HTML still stands and a PDF left by an earlier run of the same report is
    removed, so no stale PDF contradicts the fresh HTML.
    """
    if not stem or Path(stem).name != stem or stem in (".", ".."):
        raise ValueError(f"report stem must be a plain file name, not {stem!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{stem}.html"
    pdf_path = out_dir / f"{stem}.pdf"
    _write_atomic(html_path, html.encode("utf-8"))
    if printer is None:
        return ReportFiles(html_path)
    try:
        pdf = printer.to_pdf(html)
    except PrintError as exc:
        error = str(exc)
    except Exception as exc:
        error = f"print service {printer.where} failed: {type(exc).__name__}: {exc}"
    else:
        _write_atomic(pdf_path, pdf)
        return ReportFiles(html_path, pdf_path)
    log.warning("report %s kept as HTML only: %s", stem, error)
    pdf_path.unlink(missing_ok=True)
    return ReportFiles(html_path, None, error)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
