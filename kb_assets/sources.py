"""The ``sources`` group: each source's documents, converted and scrubbed as they are
stored, and the people directory the scrubbing uses.

Every source syncs incrementally where its API allows and finds its own pending work in
the database, so a nightly run with nothing new is cheap.
"""

import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from kb_assets.automation import DAILY_SOURCE_REFRESH
from kb_assets.common import counts_metadata, log_failures, preparer
from kb_assets.resources import (
    ConfluenceResource,
    DatabaseResource,
    FilesSourceResource,
    JiraResource,
    PyrusResource,
)
from kb_core.index.access import apply_form_access, sync_access
from kb_core.index.documents import PrepareReport, load_cursor, sync_source
from kb_core.models import SourceDocument, SyncCounts
from kb_core.pii.directory import (
    catalog_names,
    directory_entries,
    member_names,
    save_directory,
)
from kb_core.search.access import form_audiences, parse_group_map
from kb_core.sources import configured
from kb_core.sources.attachments import SOURCE_NAME as ATTACHMENT_SOURCE
from kb_core.sources.attachments import AttachmentFetch, fetch_attachments, known_attachments
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
    if not settings.pii.directory or not pyrus.enabled:
        context.log.info("people directory off (KB_PII_DIRECTORY / Pyrus not configured)")
        return dg.MaterializeResult(metadata={"enabled": False})
    with pyrus.client() as client:
        members = client.get_members()
        names = member_names(members)
        catalogs = settings.pii.directory_catalogs
        for catalog_id in catalogs:
            names.extend(catalog_names(client.get_catalog(catalog_id)))
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
    with preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            FILES_SOURCE,
            files_source.documents(),
            max_delete_fraction=database.settings.sync.max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    context.log.info(f"files source synced: {counts}")
    log_failures(context, report)
    return dg.MaterializeResult(
        metadata=counts_metadata(
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
    with preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            source,
            documents,
            full_listing=False,
            live_ids=live_ids,
            cursor=cursor.as_json(),
            max_delete_fraction=database.settings.sync.max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    log_failures(context, report)
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
            comments=settings.confluence.comments,
            space_groups=parse_group_map(
                settings.confluence.space_groups, "KB_CONFLUENCE_SPACE_GROUPS"
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
        metadata=counts_metadata(
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
) -> dict[str, Any]:
    """Attachments of the pages just fetched; per-file errors go to the metadata."""
    settings = database.settings
    if not settings.confluence.attachments:
        return {"attachments_enabled": False}
    with database.connection() as conn:
        known = known_attachments(conn)
    result = fetch_attachments(
        client, fetch.pages, known, fetch.live_ids, configured.attachment_rules(settings)
    )
    report = PrepareReport()
    with preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            ATTACHMENT_SOURCE,
            result.documents,
            full_listing=False,
            live_ids=result.live_ids,
            max_delete_fraction=settings.sync.max_delete_fraction,
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
    log_failures(context, report)
    for error in result.errors:
        context.log.warning(f"attachment not indexed: {error}")
    return _attachment_metadata(counts, result)


def _attachment_metadata(counts: SyncCounts, result: AttachmentFetch) -> dict[str, Any]:
    """The run metadata of an attachment sync, the same for pages' and tickets' files."""
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
        metadata=counts_metadata(
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
    audiences = form_audiences(settings.pyrus.form_groups)
    with database.connection() as conn:
        apply_form_access(conn, TICKETS_SOURCE, audiences)
        # A ticket's attachment is readable by whoever may read its ticket.
        apply_form_access(conn, TICKET_ATTACHMENT_SOURCE, audiences)
    context.log.info(f"Pyrus tickets {fetch.mode} sync: {counts}")
    return dg.MaterializeResult(
        metadata=counts_metadata(
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
) -> dict[str, Any]:
    """Attachments of the tickets just fetched, living as long as their ticket's
    document; per-file errors go to the metadata and the run goes on."""
    # The same attachment settings as Confluence's (KB_ATTACHMENT_TYPES empty: none).
    settings = database.settings
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
    with preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            TICKET_ATTACHMENT_SOURCE,
            result.documents,
            full_listing=False,
            live_ids=result.live_ids,
            max_delete_fraction=settings.sync.max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    log_failures(context, report)
    for error in result.errors:
        context.log.warning(f"ticket attachment not indexed: {error}")
    return _attachment_metadata(counts, result)


@dg.asset(
    group_name="sources",
    description="Approved entries of the «Актуализация RAG» form: curated corrections.",
    kinds={"postgres"},
    automation_condition=DAILY_SOURCE_REFRESH,
)
def kb_corrections(
    context: dg.AssetExecutionContext, database: DatabaseResource, pyrus: PyrusResource
) -> dg.MaterializeResult:
    form_id = pyrus.settings.pyrus.corrections_form_id
    if not pyrus.enabled or form_id is None:
        context.log.info("corrections form not configured (KB_PYRUS_CORRECTIONS_FORM_ID)")
        return dg.MaterializeResult(metadata={"enabled": False})
    with pyrus.client() as client:
        documents = fetch_corrections(
            client, form_id, configured.correction_builder(pyrus.settings)
        )
        retries, logins = client.retries, client.logins
    report = PrepareReport()
    with preparer(context, database) as prepare, database.connection() as conn:
        counts = sync_source(
            conn,
            CORRECTIONS_SOURCE,
            documents,
            max_delete_fraction=pyrus.settings.sync.max_delete_fraction,
            prepare=prepare,
            report=report,
        )
    context.log.info(f"corrections synced: {counts}")
    log_failures(context, report)
    return dg.MaterializeResult(
        metadata=counts_metadata(
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
    settings = database.settings
    with database.connection() as conn:
        events = pending_events(conn)
    if not events:
        return dg.MaterializeResult(metadata={"events": 0})
    confluence_client = confluence.client() if confluence.enabled else None
    pyrus_client = pyrus.client() if pyrus.enabled else None
    try:
        with preparer(context, database) as prepare, database.connection() as conn:
            result = apply_events(
                conn,
                events,
                confluence=confluence_client,
                spaces=confluence.spaces,
                comments=settings.confluence.comments,
                attachments=configured.attachment_rules(settings)
                if settings.confluence.attachments
                else None,
                pyrus=pyrus_client,
                tickets=configured.ticket_builder(settings) if pyrus.enabled else None,
                prepare=prepare,
                space_groups=parse_group_map(
                    settings.confluence.space_groups, "KB_CONFLUENCE_SPACE_GROUPS"
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


SOURCE_ASSETS = [
    person_directory,
    raw_files,
    raw_confluence_pages,
    raw_pyrus_tickets,
    kb_corrections,
    raw_jira_issues,
    source_event_updates,
]
