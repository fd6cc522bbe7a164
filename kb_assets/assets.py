"""The pipeline's assets and checks, one module per group, as the definitions load them.

The data products live in PostgreSQL (documents, chunks, vectors), so assets depend on
each other with ``deps=`` and return metadata, not Python objects: every stage finds its
own pending work in the database and is a no-op when nothing changed.

- ``sources`` (kb_assets.sources): each source's documents and the people directory;
- ``knowledge_base``: the index stages (kb_assets.index), then evaluation, the blocking
  gate and promotion (kb_assets.evaluation);
- ``maintenance`` (kb_assets.maintenance); ``effect`` (kb_assets.effect).
"""

from kb_assets.evaluation import candidate_passes_eval, promoted_index, rag_eval
from kb_assets.index import (
    chunk_embeddings,
    cleaned_markdown,
    no_personal_data_in_chunks,
    pii_free_chunks,
)
from kb_assets.maintenance import MAINTENANCE_ASSETS, index_maintenance
from kb_assets.sources import (
    SOURCE_ASSETS,
    kb_corrections,
    person_directory,
    raw_confluence_pages,
    raw_files,
    raw_jira_issues,
    raw_pyrus_tickets,
    source_event_updates,
)

INGEST_ASSETS = [
    *SOURCE_ASSETS,
    cleaned_markdown,
    pii_free_chunks,
    chunk_embeddings,
    rag_eval,
    promoted_index,
]
INGEST_CHECKS = [no_personal_data_in_chunks, candidate_passes_eval]

__all__ = [
    "INGEST_ASSETS",
    "INGEST_CHECKS",
    "MAINTENANCE_ASSETS",
    "SOURCE_ASSETS",
    "index_maintenance",
    "kb_corrections",
    "person_directory",
    "raw_confluence_pages",
    "raw_files",
    "raw_jira_issues",
    "raw_pyrus_tickets",
    "source_event_updates",
]
