"""No planted personal data anywhere the product writes, after `kb demo` on a fresh database.

`kb demo` runs as a user runs it (a separate process, the fake Confluence and Pyrus with
the sample data, the real Dagster assets), on a fresh migrated database. Then every
text, JSON, array and full-text column of that database (enumerated, not listed by hand),
every file the demo wrote and everything it printed are searched for the values the
sample tickets' own labels plant (samples/**/*.pii.json).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from evals.planted_pii import Leaks, find_in_texts, planted_values, scan_database
from tests.conftest import process_env, settings_for

pytestmark = pytest.mark.slow  # the whole `kb demo` in a process


@pytest.fixture(scope="module")
def planted():
    values = planted_values()
    assert len(values) == 671  # the samples' labels, all of them
    return values


@pytest.mark.timeout(1800)  # the whole demo: ingest with NER, the bot, the effect report
def test_demo_leaves_no_planted_value_in_the_database_or_its_output(
    db_url: str, tmp_path: Path, planted
):
    data_dir = tmp_path / "data"
    env = process_env(settings_for(db_url, data_dir))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("kb")), "demo", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "internal comment posted" in result.stdout

    with psycopg.connect(db_url) as conn:
        in_db = scan_database(conn, planted)
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()
    assert chunks is not None and chunks[0] > 100  # the demo really indexed the samples
    assert in_db.as_json()["found"] == 0, in_db.as_json()

    printed = Leaks()
    find_in_texts([result.stdout, result.stderr], planted, "output", printed)
    written = [p.read_text("utf-8", errors="replace") for p in data_dir.rglob("*") if p.is_file()]
    find_in_texts(written, planted, "files", printed)
    assert printed.as_json()["found"] == 0, printed.as_json()
