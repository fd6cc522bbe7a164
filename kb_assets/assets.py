"""Software-defined assets of the knowledge-base pipeline.

The data products live in PostgreSQL (documents, chunks, vectors), so assets depend on
each other with ``deps=`` and return metadata, not Python objects: every stage finds its
own pending work in the database and is a no-op when nothing changed.
"""

import time

import dagster as dg

from kb_assets.resources import DatabaseResource, EmbedderResource, FilesSourceResource
from kb_core.index.documents import sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.settings import get_settings
from kb_core.sources.files import SOURCE_NAME as FILES_SOURCE
from kb_core.text.chunking import ChunkerConfig


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


@dg.asset(
    group_name="sources",
    description="Articles from a folder of Markdown/HTML files (KB_FILES_DIR).",
    kinds={"postgres"},
)
def raw_files(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    files_source: FilesSourceResource,
) -> dg.MaterializeResult:
    if not files_source.enabled:
        context.log.info("files source not configured (KB_FILES_DIR): nothing to sync")
        return dg.MaterializeResult(metadata={"enabled": False})
    with database.connection() as conn:
        counts = sync_source(conn, FILES_SOURCE, files_source.documents())
    context.log.info(f"files source synced: {counts}")
    return dg.MaterializeResult(
        metadata={
            "enabled": True,
            "root": dg.MetadataValue.path(str(files_source.root)),
            "new": counts.new,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
            "deleted": counts.deleted,
            "documents": counts.total_live,
        }
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[raw_files],
    description="Every live document converted to structure-preserving Markdown.",
    kinds={"postgres"},
)
def cleaned_markdown(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    with database.connection() as conn:
        result = convert_pending(conn, progress=_ProgressLog(context, "converted"))
    for failure in result.failures:
        context.log.error(f"document {failure.document_id} not converted: {failure.error}")
    return dg.MaterializeResult(
        metadata={
            "converted": result.converted,
            "failed": len(result.failures),
            "failed_documents": dg.MetadataValue.json(
                [f.external_id for f in result.failures[:50]]
            ),
        }
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[cleaned_markdown],
    description="Markdown split into heading-aware chunks with full-text vectors.",
    kinds={"postgres"},
)
def chunks(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    settings = get_settings()
    config = ChunkerConfig(size=settings.chunk_size, overlap=settings.chunk_overlap)
    with database.connection() as conn:
        result = chunk_pending(conn, config, progress=_ProgressLog(context, "chunked documents"))
    return dg.MaterializeResult(
        metadata={
            "documents_rechunked": result.documents,
            "chunks_written": result.chunks_written,
            "embeddings_carried_over": result.embeddings_carried,
            "chunker": config.signature,
        }
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[chunks],
    description="Embeddings of every chunk in pgvector, computed only for new text.",
    kinds={"postgres"},
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
        row = conn.execute(
            "SELECT count(*) FROM chunks WHERE embedding_model = %s", (model.model_id,)
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            "model": model.model_id,
            "dimension": model.dimension,
            "embedded": result.embedded,
            "reused_by_content_hash": result.reused,
            "chunks_per_second": round(result.chunks_per_second, 1),
            "indexed_chunks": int(row[0]) if row else 0,
        }
    )


INGEST_ASSETS = [raw_files, cleaned_markdown, chunks, chunk_embeddings]
