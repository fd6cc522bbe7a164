"""Software-defined assets of the knowledge-base pipeline.

The data products live in PostgreSQL (documents, chunks, vectors), so assets depend on
each other with ``deps=`` and return metadata, not Python objects: every stage finds its
own pending work in the database and is a no-op when nothing changed.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from evals.harness import run_eval
from evals.report import history, history_chart
from kb_assets.evaluation import answer_scorer, eval_metadata, gate_config, golden_paths
from kb_assets.resources import (
    ConfluenceResource,
    DatabaseResource,
    EmbedderResource,
    FilesSourceResource,
    JiraResource,
    NotificationsResource,
    PyrusResource,
)
from kb_core.console import audit
from kb_core.index.access import apply_form_access, sync_access
from kb_core.index.documents import Preparer, PrepareReport, load_cursor, sync_source
from kb_core.index.maintenance import run_maintenance
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import (
    NoActiveVersion,
    PromotionRefused,
    active_version,
    candidate_version,
    promote,
)
from kb_core.models import SourceDocument, SyncCounts
from kb_core.notify import promotion_blocked_text, title
from kb_core.pii.check import check_unchecked_chunks
from kb_core.pii.configured import ParallelScrubber, config_from_settings, config_signature
from kb_core.pii.directory import (
    catalog_names,
    directory_entries,
    load_directory,
    member_names,
    save_directory,
)
from kb_core.pii.verifier import Verifier
from kb_core.search.access import form_audiences, parse_group_map
from kb_core.settings import get_settings, split_list
from kb_core.sources import configured
from kb_core.sources.attachments import SOURCE_NAME as ATTACHMENT_SOURCE
from kb_core.sources.attachments import fetch_attachments, known_attachments
from kb_core.sources.confluence import SOURCE_NAME as CONFLUENCE_SOURCE
from kb_core.sources.confluence import ConfluenceClient, ConfluenceFetch, fetch_changes
from kb_core.sources.cursor import SyncCursor
from kb_core.sources.events import apply_events, pending_events
from kb_core.sources.files import SOURCE_NAME as FILES_SOURCE
from kb_core.sources.jira import SOURCE_NAME as JIRA_SOURCE
from kb_core.sources.jira import fetch_changes as fetch_jira_changes
from kb_core.sources.jira_access import apply_project_access, project_access
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_attachments import SOURCE_NAME as TICKET_ATTACHMENT_SOURCE
from kb_core.sources.pyrus_attachments import fetch_ticket_attachments, known_ticket_attachments
from kb_core.sources.pyrus_sync import TicketFetch, fetch_corrections, fetch_tickets
from kb_core.sources.pyrus_tasks import CORRECTIONS_SOURCE, TICKETS_SOURCE
from kb_core.text.chunking import ChunkerConfig

# Sources refresh daily at night, Moscow time; everything downstream follows eagerly.
DAILY_SOURCE_REFRESH = dg.AutomationCondition.on_cron("0 3 * * *", cron_timezone="Europe/Moscow")
DOWNSTREAM = dg.AutomationCondition.eager()
# A check is only part of an automation-launched run when its own condition requests it:
# without one, the daemon's nightly run would skip the blocking PII and evaluation checks
# and promotion would refuse the unchecked candidate. Eager: in the same run as its asset.
CHECK_WITH_ASSET = dg.AutomationCondition.eager()


class _ProgressLog:
    """Logs stage progress at most every few seconds, and once at the end."""

    INTERVAL_S = 5.0

    def __init__(self, context: dg.AssetExecutionContext, what: str) -> None:
        self._context = context
        self._what = what
        self._started = self._last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - self._last >= self.INTERVAL_S:
            rate = done / max(now - self._started, 1e-9)
            self._context.log.info(f"{self._what}: {done}/{total} ({rate:.1f}/s)")
            self._last = now


def _counts_metadata(
    counts: SyncCounts, report: PrepareReport | None = None, **extra: object
) -> dict[str, object]:
    prepared: dict[str, object] = {}
    if report is not None:
        prepared = {
            "prepared": report.prepared,
            "pii_placeholders_inserted": report.placeholders,
            "not_converted": dg.MetadataValue.json([i for i, _ in report.failures[:50]]),
        }
    return {
        "enabled": True,
        "new": counts.new,
        "changed": counts.changed,
        "unchanged": counts.unchanged,
        "deleted": counts.deleted,
        **prepared,
        **extra,
    }


@contextmanager
def _preparer(context: dg.AssetExecutionContext, database: DatabaseResource) -> Iterator[Preparer]:
    """Converts and scrubs what a source delivers before it is stored: the raw text never
    reaches the database (kb_core.index.documents)."""
    settings = get_settings()
    with database.connection() as conn:
        directory = load_directory(conn)
    pii_config = replace(config_from_settings(settings), directory=directory)
    if not settings.pii_scrub:
        context.log.warning("KB_PII_SCRUB is off: documents are stored NOT scrubbed")
        yield Preparer()
        return
    with ParallelScrubber(pii_config, settings.pii_workers) as scrubber:
        yield Preparer(scrubber.scrub_many, config_signature(pii_config))


def _log_failures(context: dg.AssetExecutionContext, report: PrepareReport) -> None:
    for external_id, error in report.failures:
        context.log.error(f"document {external_id} not converted: {error}")


@dg.asset(
    group_name="sources",
    description="The organisation's people (Pyrus members, contacts of the configured "
    "catalogs) as hashed name lemmas: a deny-list for scrubbing and for the verifier.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def person_directory(
    context: dg.AssetExecutionContext, database: DatabaseResource, pyrus: PyrusResource
) -> dg.MaterializeResult:
    settings = pyrus.settings
    if not settings.pii_directory or not pyrus.enabled:
        context.log.info("people directory off (KB_PII_DIRECTORY / Pyrus not configured)")
        return dg.MaterializeResult(metadata={"enabled": False})
    with pyrus.client() as client:
        members = client.get_members()
        names = member_names(members)
        catalogs = split_list(settings.pii_directory_catalogs)
        for catalog_id in catalogs:
            names.extend(catalog_names(client.get_catalog(int(catalog_id))))
    with database.connection() as conn:
        stored = save_directory(conn, directory_entries(names))
    # Counts only: the directory is personal data, its values never leave the database.
    return dg.MaterializeResult(
        metadata={
            "enabled": True,
            "members": len(members),
            "catalogs": len(catalogs),
            "lemma_hashes": stored,
        }
    )


@dg.asset(
    group_name="sources",
    description="Articles from a folder of Markdown/HTML files (KB_FILES_DIR).",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def raw_files(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    files_source: FilesSourceResource,
) -> dg.MaterializeResult:
    if not files_source.enabled:
        context.log.info("files source not configured (KB_FILES_DIR): nothing to sync")
        return dg.MaterializeResult(metadata={"enabled": False})
    report = PrepareReport()
    with _preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            FILES_SOURCE,
            files_source.documents(),
            max_delete_fraction=get_settings().sync_max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    context.log.info(f"files source synced: {counts}")
    _log_failures(context, report)
    return dg.MaterializeResult(
        metadata=_counts_metadata(
            counts,
            report,
            root=dg.MetadataValue.path(str(files_source.root)),
            documents=counts.total_live,
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _cursor(database: DatabaseResource, source: str) -> SyncCursor:
    with database.connection() as conn:
        return SyncCursor.from_json(load_cursor(conn, source))


def _write_incremental(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    source: str,
    documents: list[SourceDocument],
    live_ids: set[str] | None,
    cursor: SyncCursor,
) -> tuple[SyncCounts, PrepareReport]:
    """Write what an incremental fetch returned, deletions and the new cursor, at once."""
    report = PrepareReport()
    with _preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            source,
            documents,
            full_listing=False,
            live_ids=live_ids,
            cursor=cursor.as_json(),
            max_delete_fraction=get_settings().sync_max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    _log_failures(context, report)
    return counts, report


@dg.asset(
    group_name="sources",
    description="Pages of the configured Confluence spaces, synced incrementally (CQL "
    "lastmodified with an overlap); pages gone from a space are soft-deleted.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def raw_confluence_pages(
    context: dg.AssetExecutionContext, database: DatabaseResource, confluence: ConfluenceResource
) -> dg.MaterializeResult:
    if not confluence.enabled:
        context.log.info("Confluence not configured (KB_CONFLUENCE_URL / _SPACES): skipped")
        return dg.MaterializeResult(metadata={"enabled": False})
    settings = confluence.settings
    cursor = _cursor(database, CONFLUENCE_SOURCE)
    with confluence.client() as client:
        fetch = fetch_changes(
            client,
            confluence.spaces,
            cursor,
            now=_now(),
            overlap=configured.overlap(settings),
            listing_interval=configured.listing_interval(settings),
            comments=settings.confluence_comments,
            space_groups=parse_group_map(
                settings.confluence_space_groups, "KB_CONFLUENCE_SPACE_GROUPS"
            ),
        )
        counts, report = _write_incremental(
            context,
            database,
            CONFLUENCE_SOURCE,
            [page.as_document() for page in fetch.pages],
            fetch.live_ids,
            fetch.cursor,
        )
        attachments = _sync_attachments(context, database, client, fetch)
        retries = client.http.retries
    with database.connection() as conn:
        sync_access(conn, CONFLUENCE_SOURCE, fetch.access, origin="confluence")
    context.log.info(f"Confluence {fetch.mode} sync: {counts}")
    return dg.MaterializeResult(
        metadata=_counts_metadata(
            counts,
            report,
            mode=fetch.mode,
            fetched=len(fetch.pages),
            deletions_checked=fetch.live_ids is not None,
            http_retries=retries,
            spaces=", ".join(confluence.spaces),
            **attachments,
        )
    )


def _sync_attachments(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    client: ConfluenceClient,
    fetch: ConfluenceFetch,
) -> dict[str, object]:
    """Attachments of the pages just fetched; per-file errors go to the metadata."""
    settings = get_settings()
    if not settings.confluence_attachments:
        return {"attachments_enabled": False}
    with database.connection() as conn:
        known = known_attachments(conn)
    result = fetch_attachments(
        client, fetch.pages, known, fetch.live_ids, configured.attachment_rules(settings)
    )
    report = PrepareReport()
    with _preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            ATTACHMENT_SOURCE,
            result.documents,
            full_listing=False,
            live_ids=result.live_ids,
            max_delete_fraction=settings.sync_max_delete_fraction,
            prepare=prepare,
            report=report,
        )
        # An attachment is readable by whoever may read its page.
        sync_access(
            conn,
            ATTACHMENT_SOURCE,
            {
                doc.external_id: fetch.access.get(str(doc.metadata.get("page_id")))
                for doc in result.documents
            },
            origin="confluence",
        )
    _log_failures(context, report)
    for error in result.errors:
        context.log.warning(f"attachment not indexed: {error}")
    return {
        "attachments_new": counts.new,
        "attachments_changed": counts.changed,
        "attachments_deleted": counts.deleted,
        "attachments_downloaded": result.downloaded,
        "attachments_bytes": result.downloaded_bytes,
        "attachments_per_second": round(result.per_second, 1),
        "attachments_skipped": dg.MetadataValue.json(dict(result.skipped)),
        "attachment_errors": dg.MetadataValue.json(result.errors[:100]),
    }


@dg.asset(
    group_name="sources",
    description="Resolved issues of the configured Jira projects as question + resolution "
    "documents, synced incrementally (JQL updated with an overlap); issues no longer "
    "resolved in the projects are soft-deleted.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def raw_jira_issues(
    context: dg.AssetExecutionContext, database: DatabaseResource, jira: JiraResource
) -> dg.MaterializeResult:
    if not jira.enabled:
        context.log.info("Jira not configured (KB_JIRA_URL / _PROJECTS): skipped")
        return dg.MaterializeResult(metadata={"enabled": False})
    settings = jira.settings
    cursor = _cursor(database, JIRA_SOURCE)
    started = time.perf_counter()
    with jira.client() as client:
        fetch = fetch_jira_changes(
            client,
            jira.projects,
            cursor,
            now=_now(),
            overlap=configured.overlap(settings),
            listing_interval=configured.listing_interval(settings),
        )
        access = project_access(client, jira.projects)
        retries = client.http.retries
    counts, report = _write_incremental(
        context,
        database,
        JIRA_SOURCE,
        [issue.as_document(jira.bot_accounts) for issue in fetch.issues],
        fetch.live_ids,
        fetch.cursor,
    )
    with database.connection() as conn:
        apply_project_access(conn, access)
    seconds = time.perf_counter() - started
    context.log.info(f"Jira {fetch.mode} sync: {counts} in {seconds:.2f}s")
    return dg.MaterializeResult(
        metadata=_counts_metadata(
            counts,
            report,
            mode=fetch.mode,
            fetched=len(fetch.issues),
            deletions_checked=fetch.live_ids is not None,
            http_retries=retries,
            projects=", ".join(jira.projects),
            project_access=dg.MetadataValue.json(
                {
                    key: {"origin": item.origin, "groups": sorted(item.groups or [])}
                    for key, item in access.items()
                }
            ),
            seconds=round(seconds, 3),
            issues_per_second=round(len(fetch.issues) / max(seconds, 1e-9), 1),
        )
    )


@dg.asset(
    group_name="sources",
    description="Resolved tickets of the helpdesk forms as question + resolution documents.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def raw_pyrus_tickets(
    context: dg.AssetExecutionContext, database: DatabaseResource, pyrus: PyrusResource
) -> dg.MaterializeResult:
    if not pyrus.enabled or not pyrus.form_ids:
        context.log.info("Pyrus tickets not configured (KB_PYRUS_LOGIN / _FORM_IDS): skipped")
        return dg.MaterializeResult(metadata={"enabled": False})
    settings = pyrus.settings
    cursor = _cursor(database, TICKETS_SOURCE)
    with pyrus.client() as client:
        fetch = fetch_tickets(
            client,
            pyrus.form_ids,
            configured.ticket_builder(settings),
            cursor,
            now=_now(),
            overlap=configured.overlap(settings),
            listing_interval=configured.listing_interval(settings),
        )
        counts, report = _write_incremental(
            context, database, TICKETS_SOURCE, fetch.documents, fetch.live_ids, fetch.cursor
        )
        attachments = _sync_ticket_attachments(context, database, client, fetch)
        retries, logins = client.retries, client.logins
    audiences = form_audiences(settings.pyrus_form_groups)
    with database.connection() as conn:
        apply_form_access(conn, TICKETS_SOURCE, audiences)
        # A ticket's attachment is readable by whoever may read its ticket.
        apply_form_access(conn, TICKET_ATTACHMENT_SOURCE, audiences)
    context.log.info(f"Pyrus tickets {fetch.mode} sync: {counts}")
    return dg.MaterializeResult(
        metadata=_counts_metadata(
            counts,
            report,
            mode=fetch.mode,
            tasks_seen=fetch.tasks_seen,
            open_skipped=fetch.skipped_open,
            deletions_checked=fetch.live_ids is not None,
            http_retries=retries,
            logins=logins,
            **attachments,
        )
    )


def _sync_ticket_attachments(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    client: PyrusClient,
    fetch: TicketFetch,
) -> dict[str, object]:
    """Attachments of the tickets just fetched, living as long as their ticket's
    document; per-file errors go to the metadata and the run goes on."""
    # The same attachment settings as Confluence's (KB_ATTACHMENT_TYPES empty: none).
    settings = get_settings()
    with database.connection() as conn:
        known = known_ticket_attachments(conn)
        live_tickets = {
            str(r[0])
            for r in conn.execute(
                "SELECT external_id FROM documents WHERE source = %s AND deleted_at IS NULL",
                (TICKETS_SOURCE,),
            )
        }
    result = fetch_ticket_attachments(
        client,
        fetch.documents,
        fetch.attachments,
        known,
        live_tickets,
        configured.attachment_rules(settings),
    )
    report = PrepareReport()
    with _preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            TICKET_ATTACHMENT_SOURCE,
            result.documents,
            full_listing=False,
            live_ids=result.live_ids,
            max_delete_fraction=settings.sync_max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    _log_failures(context, report)
    for error in result.errors:
        context.log.warning(f"ticket attachment not indexed: {error}")
    return {
        "attachments_new": counts.new,
        "attachments_changed": counts.changed,
        "attachments_deleted": counts.deleted,
        "attachments_downloaded": result.downloaded,
        "attachments_bytes": result.downloaded_bytes,
        "attachments_per_second": round(result.per_second, 1),
        "attachments_skipped": dg.MetadataValue.json(dict(result.skipped)),
        "attachment_errors": dg.MetadataValue.json(result.errors[:100]),
    }


@dg.asset(
    group_name="sources",
    description="Approved entries of the «Актуализация RAG» form: curated corrections.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def kb_corrections(
    context: dg.AssetExecutionContext, database: DatabaseResource, pyrus: PyrusResource
) -> dg.MaterializeResult:
    form_id = pyrus.settings.pyrus_corrections_form_id
    if not pyrus.enabled or form_id is None:
        context.log.info("corrections form not configured (KB_PYRUS_CORRECTIONS_FORM_ID)")
        return dg.MaterializeResult(metadata={"enabled": False})
    with pyrus.client() as client:
        documents = fetch_corrections(
            client, form_id, configured.correction_builder(pyrus.settings)
        )
        retries, logins = client.retries, client.logins
    report = PrepareReport()
    with _preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            CORRECTIONS_SOURCE,
            documents,
            max_delete_fraction=pyrus.settings.sync_max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    context.log.info(f"corrections synced: {counts}")
    _log_failures(context, report)
    return dg.MaterializeResult(
        metadata=_counts_metadata(
            counts, report, approved=len(documents), http_retries=retries, logins=logins
        )
    )


@dg.asset(
    group_name="sources",
    description="Pages and tickets named by pending source events (Confluence webhooks, "
    "Pyrus ticket closed), refreshed one by one; started by the events sensor within "
    "minutes, and nightly as a retry.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def source_event_updates(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    confluence: ConfluenceResource,
    pyrus: PyrusResource,
) -> dg.MaterializeResult:
    settings = get_settings()
    with database.connection() as conn:
        events = pending_events(conn)
    if not events:
        return dg.MaterializeResult(metadata={"events": 0})
    confluence_client = confluence.client() if confluence.enabled else None
    pyrus_client = pyrus.client() if pyrus.enabled else None
    try:
        with _preparer(context, database) as prepare, database.connection() as conn:
            result = apply_events(
                conn,
                events,
                confluence=confluence_client,
                spaces=confluence.spaces,
                comments=settings.confluence_comments,
                attachments=configured.attachment_rules(settings)
                if settings.confluence_attachments
                else None,
                pyrus=pyrus_client,
                tickets=configured.ticket_builder(settings) if pyrus.enabled else None,
                prepare=prepare,
                space_groups=parse_group_map(
                    settings.confluence_space_groups, "KB_CONFLUENCE_SPACE_GROUPS"
                ),
            )
    finally:
        if confluence_client is not None:
            confluence_client.close()
        if pyrus_client is not None:
            pyrus_client.close()
    for error in result.errors:
        context.log.warning(f"event not applied: {error}")
    return dg.MaterializeResult(
        metadata={
            "events": result.events,
            "pages_written": result.pages_written,
            "pages_removed": result.pages_removed,
            "attachments_written": result.attachments_written,
            "tickets_written": result.tickets_written,
            "errors": dg.MetadataValue.json(result.errors[:50]),
        }
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[
        raw_files,
        raw_confluence_pages,
        raw_jira_issues,
        raw_pyrus_tickets,
        kb_corrections,
        source_event_updates,
    ],
    description="Live documents left without scrubbed Markdown (converted and scrubbed "
    "by the sync, before storing).",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
)
def cleaned_markdown(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    # Conversion happens in the sync, before anything is stored (_preparer); this stage
    # reports live documents left without scrubbed Markdown (a failed conversion, or a
    # row purged by migration 0010 waiting for its source to deliver it again).
    with database.connection() as conn:
        result = convert_pending(conn, progress=_ProgressLog(context, "checked"))
    for failure in result.failures:
        context.log.warning(f"document {failure.document_id}: {failure.error}")
    return dg.MaterializeResult(
        metadata={
            "without_markdown": len(result.failures),
            "failed_documents": dg.MetadataValue.json(
                [f.external_id for f in result.failures[:50]]
            ),
        }
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[cleaned_markdown],
    description="Markdown with personal data replaced by typed placeholders, split into "
    "heading-aware chunks with full-text vectors.",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
)
def pii_free_chunks(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    settings = get_settings()
    config = ChunkerConfig(size=settings.chunk_size, overlap=settings.chunk_overlap)
    # The stored Markdown was scrubbed when the sync wrote it (see _preparer): chunking
    # it again through the scrubber would double the cost and change nothing.
    with database.connection() as conn:
        result = chunk_pending(conn, config, progress=_ProgressLog(context, "chunked documents"))
    return dg.MaterializeResult(
        metadata={
            "scrubbed": settings.pii_scrub,
            "documents_rechunked": result.documents,
            "chunks_written": result.chunks_written,
            "pii_placeholders_inserted": result.placeholders,
            "unchanged_chunks_kept": result.chunks_kept,
            "chunker": config.signature,
        }
    )


@dg.asset_check(
    asset=pii_free_chunks,
    blocking=True,
    automation_condition=CHECK_WITH_ASSET,
    description="An independent verifier (not the scrubber: directory, name grammemes, "
    "checksums) finds no personal data in any new chunk; otherwise the run stops before "
    "embedding and the bot keeps the previous index version.",
)
def no_personal_data_in_chunks(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> dg.AssetCheckResult:
    settings = get_settings()
    # Not the scrubber: a method of its own (directory + name grammemes + checksums), so
    # what the scrubber misses it can still catch.
    with database.connection() as conn:
        verifier = Verifier(
            directory=load_directory(conn), allow=config_from_settings(settings).allow
        )
        result = check_unchecked_chunks(conn, verifier)
    flagged = sorted(result.flagged_chunks)
    if flagged:
        context.log.error(
            f"personal data found in {len(flagged)} chunks: {result.counts} (ids {flagged[:20]})"
        )
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "scanned_chunks": result.scanned,
            "flagged_chunks": len(flagged),
            "findings_by_type": dg.MetadataValue.json(result.counts),
            "flagged_chunk_ids": dg.MetadataValue.json(flagged[:50]),
        },
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[pii_free_chunks],
    description="Embeddings of every chunk in pgvector, computed only for new text.",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
    check_specs=[
        dg.AssetCheckSpec(
            "valid_vectors",
            asset="chunk_embeddings",
            description="The provider returned no zero or non-finite vectors in this run.",
            automation_condition=CHECK_WITH_ASSET,
        )
    ],
)
def chunk_embeddings(
    context: dg.AssetExecutionContext, database: DatabaseResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    model = embedder.get()
    with database.connection() as conn:
        result = embed_pending(
            conn,
            model,
            batch_size=embedder.batch_size,
            progress=_ProgressLog(context, "embedded chunks"),
        )
        candidate = candidate_version(conn)
    if result.invalid:
        context.log.error(
            f"{result.invalid} zero or non-finite vectors from {model.model_id}: "
            "those chunks stay unembedded and the candidate cannot be promoted"
        )
    share = result.invalid / max(result.embedded + result.invalid, 1)
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="valid_vectors",
                passed=result.invalid == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"invalid_vectors": result.invalid, "invalid_share": round(share, 4)},
            )
        ],
        metadata={
            "model": model.model_id,
            "dimension": model.dimension,
            "candidate_version": candidate.id if candidate else None,
            "embedded": result.embedded,
            "reused_by_content_hash": result.reused,
            "copied_for_new_model": result.forked,
            "invalid_vectors": result.invalid,
            "invalid_vector_share": round(share, 4),
            "chunks_per_second": round(result.chunks_per_second, 1),
        },
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[chunk_embeddings],
    description="The candidate index version evaluated on the golden sets (retrieval per "
    "mode, answers in hybrid), compared with the active version; stored per version.",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
)
def rag_eval(
    context: dg.AssetExecutionContext, database: DatabaseResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    settings = get_settings()
    with database.connection() as conn:
        candidate = candidate_version(conn)
        if candidate is None:
            context.log.info("no candidate version: nothing to evaluate")
            return dg.MaterializeResult(metadata={"evaluated": False})
        try:
            baseline: int | None = active_version(conn).id
        except NoActiveVersion:
            baseline = None
        run = run_eval(
            conn,
            embedder.get(),
            settings,
            version=candidate.id,
            baseline_version=baseline,
            golden_paths=golden_paths(settings),
            answer=answer_scorer(settings, embedder.get()),
            config=gate_config(settings),
            progress=_ProgressLog(context, "evaluated questions"),
        )
        chart = history_chart(history(conn))
    for failure in run.gate["failures"]:
        context.log.error(f"candidate {candidate.id}: {failure}")
    return dg.MaterializeResult(metadata=eval_metadata(run, baseline, chart))


@dg.asset_check(
    asset=rag_eval,
    blocking=True,
    automation_condition=CHECK_WITH_ASSET,
    description="The candidate meets the quality thresholds and does not regress against "
    "the active version; otherwise the run stops before promotion.",
)
def candidate_passes_eval(
    context: dg.AssetCheckExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.AssetCheckResult:
    settings = get_settings()
    with database.connection() as conn:
        candidate = candidate_version(conn)
        if candidate is None:
            return dg.AssetCheckResult(passed=True, metadata={"candidate": "none"})
        row = conn.execute(
            "SELECT id, passed, gate FROM eval_runs WHERE index_version = %s "
            "ORDER BY id DESC LIMIT 1",
            (candidate.id,),
        ).fetchone()
    if row is None:
        return dg.AssetCheckResult(
            passed=not settings.eval_gate, metadata={"candidate": candidate.id, "run": "none"}
        )
    run_id, passed, gate = row
    if not passed and settings.eval_gate:
        failures = list(gate.get("failures", []))
        notifications.send(
            "promotion_blocked",
            title("promotion_blocked"),
            promotion_blocked_text(candidate.id, failures),
        )
    return dg.AssetCheckResult(
        passed=bool(passed) or not settings.eval_gate,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "candidate": candidate.id,
            "eval_run": run_id,
            "failures": dg.MetadataValue.json(gate.get("failures", [])),
            "gate_enforced": settings.eval_gate,
        },
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[chunk_embeddings, rag_eval],
    description="The index version the bot reads: the candidate, promoted atomically once "
    "its gates pass (evaluation, every chunk embedded and re-scanned for personal data).",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=26), warn_window=timedelta(hours=24)
    ),
)
def promoted_index(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.MaterializeResult:
    with database.connection() as conn:
        try:
            result = promote(conn)
        except PromotionRefused as refused:
            context.log.error(str(refused))
            notifications.send(
                "promotion_blocked",
                title("promotion_blocked"),
                promotion_blocked_text(
                    refused.version_id, [f"{k}: {v}" for k, v in refused.failed.items()]
                ),
            )
            raise dg.Failure(
                description=str(refused),
                metadata={"candidate_version": refused.version_id, **refused.failed},
            ) from refused
        active = active_version(conn)
    if result is None:
        context.log.info(f"nothing changed: version {active.id} stays active")
    return dg.MaterializeResult(
        metadata={
            "active_version": active.id,
            "promoted": result is not None,
            "previous_version": result.previous if result else None,
            "chunks": active.chunks or 0,
            "documents": active.documents or 0,
            "embedding_model": active.embedding_model or "",
            "dimension": active.dimension or 0,
        }
    )


@dg.asset(
    group_name="maintenance",
    description="Weekly: purge rows no kept index version can see, then VACUUM ANALYZE "
    "and REINDEX CONCURRENTLY the search indexes.",
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.on_cron("0 5 * * 0", cron_timezone="Europe/Moscow"),
)
def index_maintenance(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    settings = get_settings()
    with database.connection() as conn:
        report = run_maintenance(
            conn, keep_versions=settings.index_keep_versions, log=context.log.info
        )
        # The audit log's retention (KB_AUDIT_RETENTION_DAYS) is kept here, weekly.
        audit_purged = audit.purge(conn, settings.audit_retention_days)
    return dg.MaterializeResult(
        metadata={
            "audit_entries_purged": audit_purged,
            "versions_purged": report.versions_purged,
            "chunks_purged": report.chunks_purged,
            "reindexed": dg.MetadataValue.json(report.reindexed),
            "seconds": round(report.seconds, 1),
        }
    )


SOURCE_ASSETS = [
    person_directory,
    raw_files,
    raw_confluence_pages,
    raw_pyrus_tickets,
    kb_corrections,
    raw_jira_issues,
    source_event_updates,
]
INGEST_ASSETS = [
    *SOURCE_ASSETS,
    cleaned_markdown,
    pii_free_chunks,
    chunk_embeddings,
    rag_eval,
    promoted_index,
]
MAINTENANCE_ASSETS = [index_maintenance]
INGEST_CHECKS = [no_personal_data_in_chunks, candidate_passes_eval]
