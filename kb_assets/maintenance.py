"""The ``maintenance`` group: weekly housekeeping of the index and the audit log."""

import dagster as dg

from kb_assets.automation import weekly_maintenance
from kb_assets.resources import DatabaseResource
from kb_core.console import audit
from kb_core.index.maintenance import run_maintenance


@dg.asset(
    group_name="maintenance",
    description="Weekly: purge rows no kept index version can see, then VACUUM ANALYZE "
    "and REINDEX CONCURRENTLY the search indexes.",
    kinds={"postgres"},
    automation_condition=weekly_maintenance(),
)
def index_maintenance(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    settings = database.settings
    with database.connection() as conn:
        report = run_maintenance(
            conn, keep_versions=settings.index.keep_versions, log=context.log.info
        )
        # The audit log's retention (KB_AUDIT_RETENTION_DAYS) is kept here, weekly.
        audit_purged = audit.purge(conn, settings.console.audit_retention_days)
    return dg.MaterializeResult(
        metadata={
            "audit_entries_purged": audit_purged,
            "versions_purged": report.versions_purged,
            "chunks_purged": report.chunks_purged,
            "reindexed": dg.MetadataValue.json(report.reindexed),
            "seconds": round(report.seconds, 1),
        }
    )


MAINTENANCE_ASSETS = [index_maintenance]
