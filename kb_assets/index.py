"""The ``knowledge_base`` group's index stages: Markdown, scrubbed chunks, embeddings.

They write a candidate index version; kb_assets.evaluation gates and promotes it.
"""

import dagster as dg

from kb_assets.automation import CHECK_WITH_ASSET, DOWNSTREAM
from kb_assets.common import ProgressLog
from kb_assets.resources import DatabaseResource, EmbedderResource
from kb_assets.sources import (
    kb_corrections,
    raw_confluence_pages,
    raw_files,
    raw_jira_issues,
    raw_pyrus_tickets,
    source_event_updates,
)
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import candidate_version
from kb_core.pii.check import check_unchecked_chunks
from kb_core.pii.configured import config_from_settings
from kb_core.pii.directory import load_directory
from kb_core.pii.verifier import Verifier
from kb_core.text.chunking import ChunkerConfig


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
    # Conversion happens in the sync, before anything is stored (kb_assets.common.preparer);
    # this stage reports live documents left without scrubbed Markdown (a failed conversion, or a
    # row purged by migration 0010 waiting for its source to deliver it again).
    with database.connection() as conn:
        result = convert_pending(conn, progress=ProgressLog(context, "checked"))
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
    settings = database.settings
    config = ChunkerConfig(size=settings.chunking.size, overlap=settings.chunking.overlap)
    # The stored Markdown was scrubbed when the sync wrote it (kb_assets.common.preparer):
    # chunking it again through the scrubber would double the cost and change nothing.
    with database.connection() as conn:
        result = chunk_pending(conn, config, progress=ProgressLog(context, "chunked documents"))
    return dg.MaterializeResult(
        metadata={
            "scrubbed": settings.pii.scrub,
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
    settings = database.settings
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
            progress=ProgressLog(context, "embedded chunks"),
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
