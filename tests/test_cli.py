"""The `kb` command as a user runs it: a separate process, talking to a real database."""

import json
import os
import subprocess
from pathlib import Path

from kb_core.settings import Settings
from tests.conftest import run_kb


def _kb(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    assert settings.db.url is not None
    env["DATABASE_URL"] = settings.db.url.get_secret_value()
    env["KB_DATA_DIR"] = str(settings.runtime.data_dir)
    env.pop("DAGSTER_PG_URL", None)
    return run_kb(*args, env=env)


def test_ingest_then_search_json(kb_env: Settings, sample_dir: Path):
    ingest = _kb("ingest", "files", str(sample_dir), settings=kb_env)
    assert ingest.returncode == 0, ingest.stderr
    assert "chunk_embeddings" in ingest.stdout

    search = _kb(
        "search", "письма с уведомлениями не доходят", "--k", "3", "--json", settings=kb_env
    )
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert len(hits) == 3
    assert {"doc_id", "chunk_id", "title", "score", "snippet"} <= set(hits[0])
    assert hits[0]["external_id"] == "notifications/email-notifications.md"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_search_on_empty_base_says_so(kb_env: Settings):
    result = _kb("search", "что угодно", settings=kb_env)
    assert result.returncode == 1
    assert "no index version of 'kb' has been promoted yet" in " ".join(result.stdout.split())


def test_bad_folder_is_rejected_with_a_reason(kb_env: Settings, tmp_path: Path):
    result = _kb("ingest", "files", str(tmp_path / "missing"), settings=kb_env)
    assert result.returncode != 0
    assert "not a folder" in result.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path):
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgresql://kb:topsecret@/kb?host={tmp_path}&port=1"
    result = run_kb("db", "migrate", env=env)
    assert result.returncode == 1  # any KbError: one line, exit 1
    assert "cannot connect to PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "topsecret" not in result.stderr


def test_failing_source_is_reported_in_one_line(kb_env: Settings, tmp_path: Path):
    env = dict(os.environ)
    assert kb_env.db.url is not None
    env.update(
        DATABASE_URL=kb_env.db.url.get_secret_value(),
        KB_DATA_DIR=str(kb_env.runtime.data_dir),
        KB_CONFLUENCE_URL="http://127.0.0.1:1",  # nothing listens there
        KB_CONFLUENCE_SPACES="SUP",
        KB_CONFLUENCE_TOKEN="x",
        KB_HTTP_RETRIES="2",
        KB_HTTP_BACKOFF_MAX_S="0.1",
    )
    env.pop("DAGSTER_PG_URL", None)
    result = run_kb("ingest", "sources", env=env)
    assert result.returncode == 1  # any KbError: one line, exit 1
    assert (
        "raw_confluence_pages" in result.stderr and "unreachable after 2 attempts" in result.stderr
    )
    assert "Traceback" not in result.stderr
