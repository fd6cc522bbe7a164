"""All configuration of the product, grouped by concern.

Values come from the environment (prefix ``KB_``, except the conventional
``DATABASE_URL``) or a ``.env`` file in the working directory. ``Settings`` holds one group
per concern (``settings.embedding.url`` is ``KB_EMBEDDING_URL``); docs/settings.md lists
every variable with its type and default, generated from the groups' ``Field``
descriptions (``python -m kb_core.settings_reference --write``; a test keeps it current).

Build settings once at an entry point (``get_settings()`` or ``Settings.from_env()``) and
pass them down; tests and tools derive variants with ``with_overrides`` instead of
changing the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings

from kb_core.settings.groups import (
    PROJECT_ROOT,
    READ_ENVIRONMENT,
    AttachmentSettings,
    BoostSettings,
    BotSettings,
    CategorySettings,
    ChunkingSettings,
    ConfluenceSettings,
    ConsoleSettings,
    DatabaseSettings,
    EffectSettings,
    EmbeddingSettings,
    EvalSettings,
    EventSettings,
    FilesSettings,
    HttpSettings,
    IndexSettings,
    JiraSettings,
    LlmSettings,
    NotifySettings,
    OidcSettings,
    PiiSettings,
    PyrusSettings,
    RerankerSettings,
    RuntimeSettings,
    ScheduleSettings,
    SearchSettings,
    SyncSettings,
)
from kb_core.settings.types import CommaIntList, CommaList, SemicolonList, Separated, split_items

__all__ = [
    "PROJECT_ROOT",
    "AttachmentSettings",
    "BoostSettings",
    "BotSettings",
    "CategorySettings",
    "ChunkingSettings",
    "CommaIntList",
    "CommaList",
    "ConfluenceSettings",
    "ConsoleSettings",
    "DatabaseSettings",
    "EffectSettings",
    "EmbeddingSettings",
    "EvalSettings",
    "EventSettings",
    "FilesSettings",
    "HttpSettings",
    "IndexSettings",
    "JiraSettings",
    "LlmSettings",
    "NotifySettings",
    "OidcSettings",
    "PiiSettings",
    "PyrusSettings",
    "RerankerSettings",
    "RuntimeSettings",
    "ScheduleSettings",
    "SearchSettings",
    "SemicolonList",
    "Separated",
    "Settings",
    "SyncSettings",
    "default_of",
    "defaults_of",
    "env_name",
    "get_settings",
    "split_items",
]


class Settings(BaseModel):
    """Runtime settings of the knowledge base, the pipeline, the bot and the CLI: one
    attribute per group. ``Settings()`` reads every group from the environment and
    ``.env``; ``Settings.from_env`` does the same with an explicit ``.env`` file and
    per-group values on top."""

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    boosts: BoostSettings = Field(default_factory=BoostSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    confluence: ConfluenceSettings = Field(default_factory=ConfluenceSettings)
    jira: JiraSettings = Field(default_factory=JiraSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    pyrus: PyrusSettings = Field(default_factory=PyrusSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    reranker: RerankerSettings = Field(default_factory=RerankerSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    categories: CategorySettings = Field(default_factory=CategorySettings)
    effect: EffectSettings = Field(default_factory=EffectSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)

    @classmethod
    def groups(cls) -> dict[str, type[BaseSettings]]:
        """Each group's attribute name and class, in declaration order."""
        result: dict[str, type[BaseSettings]] = {}
        for name, field in cls.model_fields.items():
            group = field.annotation
            assert isinstance(group, type) and issubclass(group, BaseSettings)
            result[name] = group
        return result

    @classmethod
    def _groups_of(cls, overrides: Mapping[str, Any]) -> dict[str, type[BaseSettings]]:
        groups = cls.groups()
        unknown = sorted(set(overrides) - set(groups))
        if unknown:
            raise ValueError(f"unknown settings groups: {', '.join(unknown)}")
        return groups

    @classmethod
    def from_env(
        cls, env_file: Path | str | None = ".env", **overrides: Mapping[str, Any]
    ) -> Settings:
        """Every group read from the environment and ``env_file`` (None: no ``.env``),
        with ``overrides`` (group name → field values) taking precedence:
        ``Settings.from_env(None, search={"mode": "vector"})``."""
        groups = cls._groups_of(overrides)
        return cls.model_validate(
            {
                name: group(_env_file=env_file, **dict(overrides.get(name, {})))
                for name, group in groups.items()
            }
        )

    @classmethod
    def defaults(cls, **overrides: Mapping[str, Any]) -> Settings:
        """The documented defaults with ``overrides`` on top: no environment, no ``.env``
        (for tests and tools whose result must not depend on the machine)."""
        groups = cls._groups_of(overrides)
        token = READ_ENVIRONMENT.set(False)
        try:
            return cls.model_validate(
                {name: group(**overrides.get(name, {})) for name, group in groups.items()}
            )
        finally:
            READ_ENVIRONMENT.reset(token)

    def with_overrides(self, **overrides: Mapping[str, Any]) -> Settings:
        """A copy with some fields of some groups replaced, validated like the environment
        (``settings.with_overrides(search={"mode": "lexical"}, bot={"search_k": 3})``);
        the environment is neither read nor changed."""
        groups = self._groups_of(overrides)
        changed: dict[str, BaseSettings] = {}
        token = READ_ENVIRONMENT.set(False)
        try:
            for name, values in overrides.items():
                current: BaseSettings = getattr(self, name)
                changed[name] = groups[name](**{**current.model_dump(), **values})
        finally:
            READ_ENVIRONMENT.reset(token)
        return self.model_copy(update=changed)

    def with_env(self, env: Mapping[str, str]) -> Settings:
        """A copy with ``env``'s variables (``{"KB_SEARCH_MODE": "lexical"}``) applied as
        the environment would apply them, without touching the process environment: how a
        tool points settings at services it started itself (the demo's fakes, a test's
        database). An unknown name is an error rather than silently ignored."""
        names = {
            var: (group_name, field)
            for group_name, group in self.groups().items()
            for field, info in group.model_fields.items()
            for var in _env_names(group, field, info.validation_alias)
        }
        unknown = sorted(set(env) - set(names))
        if unknown:
            raise ValueError(f"unknown settings variables: {', '.join(unknown)}")
        update: dict[str, dict[str, Any]] = {}
        for var, value in env.items():
            group_name, field = names[var]
            update.setdefault(group_name, {})[field] = value
        return self.with_overrides(**update)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in another process
        (each value that differs from its default, secrets included, in the format the
        environment takes): ``Settings.defaults().with_env(s.to_env()) == s``. How a test
        or a tool hands the settings it built to a ``kb`` or Dagster process it starts."""
        env: dict[str, str] = {}
        for group_name, group in self.groups().items():
            values: BaseSettings = getattr(self, group_name)
            for field, info in group.model_fields.items():
                value = getattr(values, field)
                if value != default_of(group, field):
                    name = env_name(group, field)
                    env[name] = _env_value(value, info.metadata, name)
        return env


def _env_value(value: Any, metadata: list[Any], name: str) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        # An unset optional whose default is set cannot be written as a variable (an
        # empty value would be read as a value, not as "unset").
        raise ValueError(f"{name} is unset but its default is not: no variable can say so")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        separator = next((m.separator for m in metadata if isinstance(m, Separated)), ",")
        return separator.join(str(item) for item in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once: for entry points only (CLI commands,
    ``create_app``, the Dagster definitions), which pass them down."""
    return Settings.from_env()


def default_of(group: type[BaseModel], field: str) -> Any:
    """A group field's default: option dataclasses take theirs from here, so every
    default is written once, on the setting."""
    return group.model_fields[field].get_default(call_default_factory=True)


def defaults_of(group: type[BaseModel]) -> dict[str, Any]:
    """Every field's default of a group, by field name (for an option dataclass's
    defaults: ``_DEFAULT = defaults_of(ChunkingSettings)``, ``size: int = _DEFAULT["size"]``)."""
    return {name: default_of(group, name) for name in group.model_fields}


def _env_names(group: type[BaseModel], field: str, alias: object) -> list[str]:
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [env_name(group, field)]


def env_name(group: type[BaseModel], field: str) -> str:
    """The environment variable that sets a group's field (for docs and error messages);
    a field with several accepted names gives the first."""
    info = group.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        assert isinstance(first, str)
        return first
    prefix = str(group.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()
