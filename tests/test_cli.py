"""The `kb` command as a user runs it: a separate process, talking to a real database."""

import json
import subprocess
from pathlib import Path

import pytest

from kb_core.settings import Settings
from tests.conftest import BASE, run_kb


def _kb(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    return run_kb(*args, settings=settings)


def test_ingest_then_search_json(kb_settings: Settings, sample_dir: Path):
    ingest = _kb("ingest", "files", str(sample_dir), settings=kb_settings)
    assert ingest.returncode == 0, ingest.stderr
    assert "chunk_embeddings" in ingest.stdout

    search = _kb(
        "search", "письма с уведомлениями не доходят", "--k", "3", "--json", settings=kb_settings
    )
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert len(hits) == 3
    assert {"doc_id", "chunk_id", "title", "score", "snippet"} <= set(hits[0])
    assert hits[0]["external_id"] == "notifications/email-notifications.md"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_search_on_empty_base_says_so(kb_settings: Settings):
    result = _kb("search", "что угодно", settings=kb_settings)
    assert result.returncode == 1
    assert "no index version of 'kb' has been promoted yet" in " ".join(result.stdout.split())


def test_bad_folder_is_rejected_with_a_reason(kb_settings: Settings, tmp_path: Path):
    result = _kb("ingest", "files", str(tmp_path / "missing"), settings=kb_settings)
    assert result.returncode != 0
    assert "not a folder" in result.stderr


@pytest.mark.integration  # starts a process
def test_unreachable_database_is_one_clear_line(tmp_path: Path):
    unreachable = BASE.with_env(
        {"DATABASE_URL": f"postgresql://kb:topsecret@/kb?host={tmp_path}&port=1"}
    )
    result = run_kb("db", "migrate", settings=unreachable)
    assert result.returncode == 1  # any KbError: one line, exit 1
    assert "cannot connect to PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "topsecret" not in result.stderr


def test_failing_source_is_reported_in_one_line(kb_settings: Settings, tmp_path: Path):
    unreachable = kb_settings.with_env(
        {
            "KB_CONFLUENCE_URL": "http://127.0.0.1:1",  # nothing listens there
            "KB_CONFLUENCE_SPACES": "SUP",
            "KB_CONFLUENCE_TOKEN": "x",
            "KB_HTTP_RETRIES": "2",
            "KB_HTTP_BACKOFF_MAX_S": "0.1",
        }
    )
    result = run_kb("ingest", "sources", settings=unreachable)
    assert result.returncode == 1  # any KbError: one line, exit 1
    assert (
        "raw_confluence_pages" in result.stderr and "unreachable after 2 attempts" in result.stderr
    )
    assert "Traceback" not in result.stderr
