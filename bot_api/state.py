"""What the app holds for its lifetime: settings, database, pool, embedder, services.

Built once by the lifespan (``bot_api.app.create_app``) and reached by routes only through
the typed dependencies of ``bot_api.deps``, never through ``request.app.state`` directly.
The console's services load on first use: the scrubber's models take seconds, and a bot
API that serves only webhooks never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from psycopg_pool import ConnectionPool

from kb_core.bot.corrections import CorrectionFiling
from kb_core.bot.worker import WorkerHealth
from kb_core.console.identity import OidcVerifier, Pseudonyms, RoleMapping
from kb_core.db import Database
from kb_core.embeddings import Embedder
from kb_core.generation.answer import categories_from_settings
from kb_core.generation.llm import ChatClient
from kb_core.settings import Settings
from kb_core.sources import configured
from kb_core.texts import Texts, load_texts


@dataclass
class ConsoleServices:
    """What the console needs beyond the search, each built on first use."""

    settings: Settings
    texts: Texts = field(init=False)

    def __post_init__(self) -> None:
        self.texts = load_texts(self.settings.bot.texts_path)

    @cached_property
    def llm(self) -> ChatClient | None:
        return ChatClient.from_settings(self.settings)

    @cached_property
    def categories(self) -> list[str]:
        return categories_from_settings(self.settings)

    @cached_property
    def scrub(self) -> Any:
        from kb_core.pii.configured import config_from_settings
        from kb_core.pii.scrubber import Scrubber

        return Scrubber(config_from_settings(self.settings)).scrub

    @cached_property
    def pyrus(self) -> Any:
        return (
            configured.pyrus_client(self.settings)
            if configured.pyrus_enabled(self.settings)
            else None
        )

    @cached_property
    def filing(self) -> CorrectionFiling:
        return CorrectionFiling.from_settings(self.settings, self.texts)


@dataclass
class Identity:
    """How callers are recognised; one per app: the verifier caches the provider's keys."""

    settings: Settings
    mapping: RoleMapping = field(init=False)

    def __post_init__(self) -> None:
        self.mapping = RoleMapping.from_settings(self.settings)

    @cached_property
    def verifier(self) -> OidcVerifier:
        return OidcVerifier.from_settings(self.settings)

    @cached_property
    def pseudonyms(self) -> Pseudonyms:
        key = self.settings.console.audit_key
        return Pseudonyms(key.get_secret_value().encode() if key else None)


@dataclass
class AppState:
    settings: Settings
    database: Database
    pool: ConnectionPool[Any]
    embedder: Embedder
    console: ConsoleServices
    identity: Identity
    worker_health: WorkerHealth | None = None  # ``kb serve``'s in-process worker
