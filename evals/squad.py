"""External retrieval benchmark on a SQuAD-format file (e.g. XQuAD-ru).

Every paragraph becomes one document (id = article title + paragraph index) in its own
namespace, so the benchmark never mixes with the knowledge base; every question's single
relevant document is its paragraph. Paragraphs of the same article are hard negatives.
Indexing is incremental like the pipeline's: a second run re-embeds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from evals.retrieval import GoldenCase, evaluate_modes
from kb_core.embeddings.base import Embedder
from kb_core.index.documents import sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import promote
from kb_core.models import SourceDocument
from kb_core.settings import Settings
from kb_core.text.chunking import ChunkerConfig

SOURCE = "squad"


@dataclass(frozen=True)
class SquadSet:
    documents: list[SourceDocument]
    cases: list[GoldenCase]


def load_squad(path: Path) -> SquadSet:
    data = json.loads(path.read_text("utf-8"))
    documents: list[SourceDocument] = []
    cases: list[GoldenCase] = []
    for article in data["data"]:
        title = article["title"]
        for index, paragraph in enumerate(article["paragraphs"]):
            external_id = f"{title}#{index}"
            documents.append(
                SourceDocument(
                    source=SOURCE,
                    external_id=external_id,
                    title=title,
                    raw_format="markdown",
                    raw_body=paragraph["context"],
                )
            )
            for qa in paragraph["qas"]:
                cases.append(
                    GoldenCase(
                        id=str(qa["id"]),
                        question=qa["question"],
                        relevant=frozenset({f"{SOURCE}:{external_id}"}),
                        reference_answer=(qa.get("answers") or [{}])[0].get("text", ""),
                        tags=(title,),
                        origin="external",
                    )
                )
    return SquadSet(documents, cases)


def index_squad(
    conn: psycopg.Connection[Any], squad: SquadSet, embedder: Embedder, namespace: str
) -> dict[str, int]:
    """Index the paragraphs under ``namespace`` (no PII scrubbing: public benchmark text,
    and scrubbing the names it asks about would measure the scrubber, not retrieval)."""
    # The source name carries the namespace: (source, external id) is unique, and two
    # indexes of one benchmark must not overwrite each other.
    source = f"{SOURCE}:{namespace}"
    documents = [replace(doc, source=source) for doc in squad.documents]
    counts = sync_source(conn, source, documents, namespace=namespace)
    convert_pending(conn, namespace=namespace)
    chunked = chunk_pending(conn, ChunkerConfig(), namespace=namespace)
    embedded = embed_pending(conn, embedder, namespace=namespace)
    promote(conn, namespace, require_pii_check=False)
    return {
        "documents": counts.total_live,
        "chunks": chunked.chunks_written,
        "embedded": embedded.embedded,
    }


def evaluate_squad(
    conn: psycopg.Connection[Any],
    squad: SquadSet,
    embedder: Embedder,
    *,
    modes: Sequence[str],
    k: int,
    namespace: str,
    settings: Settings,
) -> dict[str, Any]:
    """Metrics per mode; a hit counts by its paragraph id, whatever the namespace."""
    return evaluate_modes(
        conn,
        embedder,
        squad.cases,
        settings=settings,
        modes=modes,
        k=k,
        namespace=namespace,
        doc_key=lambda hit: f"{SOURCE}:{hit.external_id}",
    )
