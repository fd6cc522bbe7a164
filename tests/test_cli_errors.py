"""Every domain error reaches the person running `kb` as one line on stderr, exit code 1.

The commands run in-process with settings injected through the Typer context (as the
root callback would build them), against a real database; the failures are real ones
(an embedding server nobody listens on, a broken taxonomy file), not raised by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from evals.retrieval import GoldenSetError
from kb_cli.dagster_runs import IngestFailed
from kb_cli.main import app
from kb_core.bot.webhook import WebhookError
from kb_core.categorize.taxonomy import TaxonomyError
from kb_core.console.approval import NotACorrection
from kb_core.console.identity import AuthError
from kb_core.db import DatabaseError, MigrationError
from kb_core.embeddings.base import EmbeddingError
from kb_core.errors import KbError
from kb_core.generation.answer import InvalidAnswer
from kb_core.generation.llm import LLMError
from kb_core.generation.rerank import RerankError
from kb_core.index.documents import MassDeletionError
from kb_core.index.versions import NoActiveVersion, PromotionRefused
from kb_core.notify.printing import PrintError
from kb_core.search.hybrid import ModelMismatch
from kb_core.settings import Settings
from kb_core.sources.events import EventError
from kb_core.sources.files import SourceError
from kb_core.sources.http import SourceHTTPError
from kb_core.text.attachments import AttachmentError
from kb_core.text.formats import UnsupportedFormatError

SQUAD = {
    "data": [
        {
            "title": "Печать",
            "paragraphs": [
                {
                    "context": "Задачу можно распечатать кнопкой «Печать» в меню задачи.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Как распечатать задачу?",
                            "answers": [{"text": "кнопкой «Печать»"}],
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (LLMError, RuntimeError),
        (RerankError, RuntimeError),
        (UnsupportedFormatError, ValueError),
        (AttachmentError, ValueError),
        (PrintError, Exception),
        (TaxonomyError, ValueError),
        (ModelMismatch, RuntimeError),
        (WebhookError, ValueError),
        (SourceHTTPError, RuntimeError),
        (SourceError, RuntimeError),
        (EventError, ValueError),
        (DatabaseError, RuntimeError),
        (MigrationError, RuntimeError),
        (MassDeletionError, RuntimeError),
        (NoActiveVersion, LookupError),
        (PromotionRefused, RuntimeError),
        (AuthError, Exception),
        (NotACorrection, LookupError),
        (EmbeddingError, RuntimeError),
        (InvalidAnswer, ValueError),
        (IngestFailed, RuntimeError),
        (GoldenSetError, ValueError),
    ],
)
def test_every_public_domain_error_is_a_kb_error(error: type[Exception], builtin: type):
    # The built-in base stays, so callers catching ValueError & co. keep working.
    assert issubclass(error, KbError) and issubclass(error, builtin)


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and result.exception is not None
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_embedding_failure_is_one_line_and_exit_1(kb_settings: Settings, tmp_path: Path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), "utf-8")
    settings = kb_settings.with_overrides(
        embedding={"provider": "openai", "url": "http://127.0.0.1:1/v1", "max_retries": 0}
    )
    result = CliRunner().invoke(
        app, ["eval", "squad", str(path), "--index-name", "t"], obj=settings
    )
    line = _one_line_error(result)
    assert isinstance(result.exception, SystemExit)
    assert "still failing after 1 attempts" in line


def test_a_broken_taxonomy_is_one_line_and_exit_1(kb_settings: Settings, tmp_path: Path):
    broken = tmp_path / "categories.yaml"
    broken.write_text("categories: [unclosed\n", "utf-8")
    settings = kb_settings.with_overrides(
        pyrus={"login": "bot@example.org", "security_key": SecretStr("key"), "form_ids": "321"},
        categories={"path": broken},
    )
    result = CliRunner().invoke(
        app, ["effect", "report", "--from", "2026-05-01", "--to", "2026-05-01"], obj=settings
    )
    line = _one_line_error(result)
    assert f"{broken}: not valid YAML" in line


def test_injected_settings_are_used_as_given(kb_settings: Settings, tmp_path: Path):
    """The root callback keeps the Settings a caller passed: here a data dir that the
    process environment does not name."""
    settings = kb_settings.with_overrides(db={"url": None}, runtime={"data_dir": tmp_path / "d"})
    result = CliRunner().invoke(app, ["db", "status"], obj=settings)
    assert result.exit_code == 0, result.output
    assert "stopped" in result.stdout
    assert str(tmp_path / "d") in result.stdout.replace("\n", "")
