"""Attachments (PDF, Office files, text, logs, tables, HTML) → Markdown.

One entry point per need: :func:`attachment_markdown` for the pipeline, which must tell
a skipped type from a broken file (:class:`AttachmentError` carries a reason fit for
the run's metadata), and :func:`extract_text` for callers that only want the text or
nothing (it never raises). The libraries were chosen by a small measurement recorded in
docs/sources.md: pypdf (pure Python, no native parts) for PDF, mammoth for DOCX (its
HTML goes through the project's own HTML → Markdown converter, so headings, lists and
tables read like every other source), openpyxl for XLSX and python-pptx for PPTX.
Images, archives and executables are never converted: they carry no text we can use.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import posixpath
import zipfile
from collections.abc import Callable

from charset_normalizer import from_bytes

from kb_core.errors import KbError
from kb_core.text.markdown import html_to_markdown, normalize_markdown

log = logging.getLogger(__name__)

DOCUMENT_TYPES = frozenset(
    {"pdf", "docx", "xlsx", "pptx", "txt", "log", "csv", "md", "markdown", "html", "htm", "json"}
)
IMAGE_TYPES = frozenset(
    {"png", "jpg", "jpeg", "gif", "bmp", "svg", "webp", "tif", "tiff", "ico", "heic", "emf"}
)
ARCHIVE_TYPES = frozenset({"zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "xz", "cab", "iso"})
TEXT_ENCODINGS = ("utf-8", "cp1251")  # Russian Windows logs and CSV exports are cp1251
MAX_TABLE_ROWS = 2000  # a sheet larger than this is cut: a price list, not a database


class AttachmentError(KbError, ValueError):
    """A file of a supported type could not be read (encrypted, broken, empty)."""


def extension(filename: str) -> str:
    """The lower-case extension without the dot ("" when there is none)."""
    _, dot, ext = posixpath.basename(filename.replace("\\", "/")).rpartition(".")
    return ext.lower() if dot else ""


def kind(filename: str) -> str:
    """ "document" (converted), "image", "archive" or "binary" (skipped and counted)."""
    ext = extension(filename)
    if ext in DOCUMENT_TYPES:
        return "document"
    if ext in IMAGE_TYPES:
        return "image"
    if ext in ARCHIVE_TYPES:
        return "archive"
    return "binary"


# Encodings a Russian helpdesk meets besides UTF-8 (Windows logs and CSV exports, old
# KOI8-R and DOS files). Limiting detection to them keeps a short Windows-1251 log from
# being read as some East Asian code page.
LEGACY_ENCODINGS = ["cp1251", "koi8_r", "cp866", "cp1252"]
# A text file with NUL bytes near its start is binary under a text name.
BINARY_PROBE = 8192


def _decode(data: bytes) -> str:
    """Text of a text-like file: UTF-16 by its byte-order mark, UTF-8 (with or without a
    BOM), else the likeliest legacy encoding (charset-normalizer)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise AttachmentError("broken UTF-16 text") from exc
    if b"\x00" in data[:BINARY_PROBE]:
        raise AttachmentError("binary data under a text file name")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=LEGACY_ENCODINGS).best()
    if best is None:
        raise AttachmentError("text in an unknown encoding")
    return str(best)


def _table(rows: list[list[str]]) -> str:
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)

    def line(cells: list[str]) -> str:
        cells = [c.replace("|", "\\|").replace("\n", " ").strip() for c in cells]
        return "| " + " | ".join(cells + [""] * (width - len(cells))) + " |"

    return "\n".join([line(rows[0]), "|" + " --- |" * width, *(line(r) for r in rows[1:])])


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise AttachmentError("encrypted PDF (password required)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError as exc:
        raise AttachmentError("encrypted PDF (password required)") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise AttachmentError(f"broken PDF: {type(exc).__name__}: {exc}") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())


def _docx(data: bytes) -> str:
    import mammoth

    try:
        result = mammoth.convert_to_html(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise AttachmentError(f"broken DOCX: {type(exc).__name__}: {exc}") from exc
    return html_to_markdown(str(result.value))


def _xlsx(data: bytes) -> str:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise AttachmentError(f"broken XLSX: {type(exc).__name__}: {exc}") from exc
    parts = []
    for sheet in book.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(["" if v is None else str(v) for v in row])
            if len(rows) >= MAX_TABLE_ROWS:
                break
        table = _table(rows)
        if table:
            parts.append(f"## {sheet.title}\n\n{table}")
    book.close()
    return "\n\n".join(parts)


def _pptx(data: bytes) -> str:
    from pptx import Presentation

    try:
        deck = Presentation(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise AttachmentError(f"broken PPTX: {type(exc).__name__}: {exc}") from exc
    parts = []
    for number, slide in enumerate(deck.slides, 1):
        texts: list[str] = []
        title = slide.shapes.title.text_frame.text.strip() if slide.shapes.title else ""
        for shape in slide.shapes:
            if shape == slide.shapes.title:
                continue
            if shape.has_text_frame and shape.text_frame.text.strip():
                texts.append(shape.text_frame.text.strip())
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                texts.append(_table(rows))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                texts.append(notes)
        heading = f"## {number}. {title}" if title else f"## {number}"
        if title or texts:
            parts.append("\n\n".join([heading, *texts]))
    return "\n\n".join(parts)


def _csv(data: bytes) -> str:
    text = _decode(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ";,\t|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for row in csv.reader(io.StringIO(text), dialect):
        rows.append(row)
        if len(rows) >= MAX_TABLE_ROWS:
            break
    return _table(rows)


def _json(data: bytes) -> str:
    text = _decode(data)
    with contextlib.suppress(ValueError):  # not valid JSON: still text worth keeping
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    return f"```json\n{text.strip()}\n```"


CONVERTERS: dict[str, Callable[[bytes], str]] = {
    "pdf": _pdf,
    "docx": _docx,
    "xlsx": _xlsx,
    "pptx": _pptx,
    "csv": _csv,
    "json": _json,
    "txt": lambda data: _decode(data),
    "log": lambda data: f"```text\n{_decode(data).strip()}\n```",
    "md": lambda data: _decode(data),
    "markdown": lambda data: _decode(data),
    "html": lambda data: html_to_markdown(_decode(data)),
    "htm": lambda data: html_to_markdown(_decode(data)),
}


def _truncate(markdown: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, cut at a line end where one is near, and never
    with a code fence left open."""
    if len(markdown) <= max_chars:
        return markdown
    closing = "\n```\n"
    cut = markdown[: max(0, max_chars - len(closing))]
    at = cut.rfind("\n")
    cut = cut[:at] if at > max_chars // 2 else cut
    if cut.count("```") % 2:
        return cut + closing
    return cut + "\n"


def attachment_markdown(filename: str, data: bytes, max_chars: int) -> str | None:
    """Markdown of a supported attachment, at most ``max_chars`` long.

    None when the type is not converted (images, archives, binaries: see :func:`kind`).
    Raises :class:`AttachmentError` when a supported file cannot be read or has no text.
    """
    converter = CONVERTERS.get(extension(filename))
    if converter is None:
        return None
    try:
        markdown = converter(data)
    except AttachmentError:
        raise
    except Exception as exc:  # a library failing on a malformed file must not sink a run
        raise AttachmentError(f"unreadable .{extension(filename)}: {type(exc).__name__}") from exc
    markdown = normalize_markdown(markdown) if markdown.strip() else ""
    if not markdown.strip():
        raise AttachmentError(f"no text in .{extension(filename)} (scanned or empty)")
    return _truncate(markdown, max_chars)


def extract_text(filename: str, data: bytes, max_chars: int) -> str | None:
    """The text (as Markdown) of an attachment, or None when it has none we can read.

    Never raises: unsupported types, broken and encrypted files are all None (callers
    that must report why use :func:`attachment_markdown`).
    """
    try:
        return attachment_markdown(filename, data, max_chars)
    except AttachmentError as exc:
        log.info("attachment .%s not converted: %s", extension(filename), exc)
        return None
