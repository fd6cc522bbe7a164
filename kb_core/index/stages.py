"""The pipeline stages after a source sync: Markdown, chunks, embeddings.

Each stage finds its own work in the database (rows whose recorded input hash differs
from the current one), so a refresh in which nothing changed does nothing, and a crashed
run resumes where it stopped. Stages work on one namespace (the knowledge base is
"kb"; benchmarks index under their own). Stages expect an autocommit connection (see
kb_core.db.connect) and wrap every write in an explicit transaction. Stages know nothing
of Dagster: the assets call them and turn the returned results into metadata.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kb_core.embeddings.base import Embedder, invalid_rows
from kb_core.embeddings.metrics import record_vectors
from kb_core.index.postings import impact
from kb_core.index.vector_index import ensure_vector_index
from kb_core.index.versions import (
    NoActiveVersion,
    active_version,
    candidate_version,
    open_candidate,
    retire_chunks,
)
from kb_core.models import sha256_text
from kb_core.ops.counters import bump
from kb_core.ops.metrics import timed_call
from kb_core.pii.scrubber import count_placeholders
from kb_core.text.chunking import ChunkerConfig, chunk_markdown
from kb_core.text.lemmas import term_counts

log = logging.getLogger(__name__)

# PostgreSQL text-search configuration of the full-text column.
TS_CONFIG = "russian"
# Version of the postings written for BM25 (kb_core.text.lemmas, kb_core.index.postings);
# a change re-chunks.
LEXICAL_VERSION = "1"

Progress = Callable[[int, int], None]
Scrub = Callable[[Sequence[str]], list[str]]


def _no_progress(done: int, total: int) -> None:
    return None


def embedding_input(title: str, heading_path: Sequence[str], text: str) -> str:
    """What is embedded for a chunk: its text in the context of its title and headings."""
    context = " > ".join([title, *heading_path])
    return f"{context}\n\n{text}"


@dataclass(frozen=True)
class StageFailure:
    document_id: int
    external_id: str
    error: str


@dataclass
class ConvertResult:
    converted: int = 0
    failures: list[StageFailure] = field(default_factory=list)


@dataclass
class ChunkResult:
    scrubbed: bool = False
    documents: int = 0
    chunks_written: int = 0
    chunks_kept: int = 0  # unchanged chunks: their rows (and vectors) stay shared
    placeholders: int = 0  # personal data replaced, counted by placeholder


@dataclass
class EmbedResult:
    model_id: str
    embedded: int = 0
    reused: int = 0
    invalid: int = 0  # zero or non-finite vectors, not stored
    forked: int = 0  # shared rows copied into the candidate for a new model
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def convert_pending(
    conn: psycopg.Connection[Any], progress: Progress = _no_progress, *, namespace: str = "kb"
) -> ConvertResult:
    """Count live documents whose Markdown is missing or stale.

    Documents are converted and scrubbed when the sync writes them
    (kb_core.index.documents.Preparer): the raw text is never stored, so there is nothing
    left to convert here. What this finds are documents that failed to convert, or rows
    purged by migration 0010 that wait for their source to deliver them again; they are
    reported (ids only) so a stuck document does not go unnoticed.
    """
    rows = conn.execute(
        """
        SELECT id, external_id FROM documents
        WHERE deleted_at IS NULL AND markdown_hash IS DISTINCT FROM content_hash
          AND namespace = %s
        ORDER BY id
        """,
        (namespace,),
    ).fetchall()
    result = ConvertResult()
    for doc_id, external_id in rows:
        result.failures.append(
            StageFailure(doc_id, external_id, "no scrubbed Markdown: waits for a re-fetch")
        )
    progress(len(rows), len(rows))
    return result


def chunk_pending(
    conn: psycopg.Connection[Any],
    config: ChunkerConfig,
    progress: Progress = _no_progress,
    *,
    scrub: Scrub | None = None,
    scrub_signature: str = "off",
    batch_size: int = 100,
    namespace: str = "kb",
) -> ChunkResult:
    """Scrub and re-chunk every live document whose chunks are stale.

    Stale means: the content, the chunker or the scrubbing configuration changed. The
    knowledge base's Markdown is scrubbed when the sync stores it, so the pipeline passes
    no ``scrub``; with one (benchmark collections stored unscrubbed), personal data in
    the title and the Markdown is replaced by placeholders BEFORE chunking, so chunks,
    embeddings and the full-text column never see it.
    Documents are scrubbed a batch at a time (``scrub`` may fan out to processes); each
    document's chunks are replaced in the candidate version in one transaction; chunks
    whose text did not change keep their rows and vectors, so editing one paragraph
    re-embeds one chunk.
    """
    stamp_suffix = (
        f":{config.signature}:lex-{LEXICAL_VERSION}:pii-{scrub_signature if scrub else 'off'}"
    )
    pending = [
        (row[0], row[1])
        for row in conn.execute(
            """
            SELECT id, content_hash FROM documents
            WHERE deleted_at IS NULL AND markdown_hash = content_hash
              AND chunked_hash IS DISTINCT FROM content_hash || %s AND namespace = %s
            ORDER BY id
            """,
            (stamp_suffix, namespace),
        )
    ]
    result = ChunkResult(scrubbed=scrub is not None)
    done = 0
    for start in range(0, len(pending), batch_size):
        batch = dict(pending[start : start + batch_size])
        rows = conn.execute(
            "SELECT id, title, markdown FROM documents WHERE id = ANY(%s) ORDER BY id",
            (list(batch),),
        ).fetchall()
        texts = [text for _, title, markdown in rows for text in (title, markdown or "")]
        safe = scrub(texts) if scrub is not None else texts
        # Personal data replaced in what is chunked: by this stage when it scrubs, else
        # by the sync's preparation (the stored Markdown is already scrubbed).
        result.placeholders += sum(
            count_placeholders(after) - (count_placeholders(before) if scrub else 0)
            for before, after in zip(texts, safe, strict=True)
        )
        for index, (doc_id, _, _) in enumerate(rows):
            title, markdown = safe[2 * index], safe[2 * index + 1]
            result.chunks_written += _write_chunks(
                conn,
                doc_id,
                title,
                markdown,
                config,
                batch[doc_id] + stamp_suffix,
                result,
                namespace,
            )
            result.documents += 1
            done += 1
            progress(done, len(pending))
    return result


def _write_chunks(
    conn: psycopg.Connection[Any],
    doc_id: int,
    title: str,
    markdown: str,
    config: ChunkerConfig,
    stamp: str,
    result: ChunkResult,
    namespace: str,
) -> int:
    """Replace the document's chunks in the candidate version.

    A chunk whose text (in its title and heading context) is unchanged keeps its row, so
    the row stays shared with the active version and keeps its vector; only new texts
    become new rows and only vanished ones are retired.
    """
    chunks = chunk_markdown(markdown, config)
    with conn.transaction():
        candidate = open_candidate(conn, namespace)
        live: dict[str, list[int]] = {}
        for chunk_id, content_hash in conn.execute(
            "SELECT id, content_hash FROM chunks WHERE document_id = %s AND valid_to IS NULL "
            "ORDER BY ordinal, id",
            (doc_id,),
        ):
            live.setdefault(content_hash, []).append(chunk_id)
        fresh = []
        for chunk in chunks:
            chunk_hash = sha256_text(embedding_input(title, chunk.heading_path, chunk.text))
            same = live.get(chunk_hash)
            if same:
                conn.execute(
                    "UPDATE chunks SET ordinal = %s WHERE id = %s", (chunk.ordinal, same.pop(0))
                )
                result.chunks_kept += 1
            else:
                fresh.append((chunk, chunk_hash))
        retire_chunks(conn, [i for ids in live.values() for i in ids], candidate)
        for chunk, chunk_hash in fresh:
            head = " ".join([title, *chunk.heading_path])
            counts = term_counts(f"{head}\n{chunk.text}")
            length = sum(counts.values())
            inserted = conn.execute(
                f"""
                INSERT INTO chunks (document_id, ordinal, heading_path, text, content_hash,
                                    tsv, lexical_length, namespace, title, valid_from)
                VALUES (%(doc)s, %(ordinal)s, %(path)s, %(text)s, %(hash)s,
                        setweight(to_tsvector('{TS_CONFIG}', %(head)s), 'A')
                        || setweight(to_tsvector('{TS_CONFIG}', %(text)s), 'B'),
                        %(length)s, %(ns)s, %(title)s, %(version)s)
                RETURNING id
                """,
                {
                    "doc": doc_id,
                    "ordinal": chunk.ordinal,
                    "path": list(chunk.heading_path),
                    "text": chunk.text,
                    "hash": chunk_hash,
                    "head": head,
                    "length": length,
                    "ns": namespace,
                    "title": title,
                    "version": candidate,
                },
            ).fetchone()
            assert inserted is not None
            with conn.cursor().copy(
                "COPY chunk_terms (chunk_id, term, namespace, document_id, tf, length, impact, "
                "valid_from) FROM STDIN"
            ) as copy:
                for term, tf in counts.items():
                    copy.write_row(
                        (
                            inserted[0],
                            term,
                            namespace,
                            doc_id,
                            tf,
                            length,
                            impact(tf, length),
                            candidate,
                        )
                    )
        conn.execute(
            "UPDATE documents SET chunked_hash = %s, safe_title = %s WHERE id = %s",
            (stamp, title, doc_id),
        )
    return len(chunks)


def embed_pending(
    conn: psycopg.Connection[Any],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    progress: Progress = _no_progress,
    namespace: str = "kb",
) -> EmbedResult:
    """Give every chunk of the candidate version a vector from ``embedder``.

    Only rows the candidate wrote are changed. When the model differs from the active
    version's, the candidate becomes a full new version: every shared row is copied into
    it (with its postings) and embedded anew, while the active version keeps its rows
    and vectors. A text already embedded with the same model anywhere in the database is
    copied instead of recomputed. Batches commit one by one, so an interrupted run keeps
    its work. Vectors a provider returns zero or non-finite are not stored: the chunk
    stays unembedded (the promotion gate refuses the version) and is counted.
    """
    model_id = embedder.model_id
    result = EmbedResult(model_id=model_id)
    candidate = candidate_version(conn, namespace)
    if candidate is None:
        try:
            if active_version(conn, namespace).embedding_model == model_id:
                return result  # nothing changed since the last promotion
        except NoActiveVersion:
            pass
    with conn.transaction():
        version = open_candidate(conn, namespace)
        conn.execute(
            "UPDATE index_versions SET embedding_model = %s, dimension = %s WHERE id = %s",
            (model_id, embedder.dimension, version),
        )
        ensure_vector_index(conn, model_id, embedder.dimension)
        result.forked = _fork_for_model(conn, version, model_id, namespace)
        result.reused = conn.execute(
            """
            UPDATE chunks c SET embedding = s.embedding, embedding_model = s.embedding_model
            FROM (SELECT DISTINCT ON (content_hash) content_hash, embedding, embedding_model
                  FROM chunks WHERE embedding_model = %(model)s AND embedding IS NOT NULL
                  ORDER BY content_hash, id) s
            WHERE c.content_hash = s.content_hash AND c.valid_from = %(version)s
              AND (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM %(model)s)
            """,
            {"model": model_id, "version": version},
        ).rowcount
    pending_sql = """
        SELECT c.id, c.title, c.heading_path, c.text FROM chunks c
        WHERE c.valid_from = %(version)s
          AND (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM %(model)s)
          AND c.id > %(after)s
        ORDER BY c.id LIMIT %(limit)s
    """
    total_row = conn.execute(
        "SELECT count(*) FROM chunks WHERE valid_from = %s "
        "AND (embedding IS NULL OR embedding_model IS DISTINCT FROM %s)",
        (version, model_id),
    ).fetchone()
    total = int(total_row[0]) if total_row else 0
    after = 0
    started = time.perf_counter()
    # The model's counters exist from its first run on, so a first invalid vector is a rise.
    bump(conn, "kb_pipeline_vectors", {"model": model_id}, 0)
    bump(conn, "kb_pipeline_invalid_vectors", {"model": model_id}, 0)
    while True:
        batch = conn.execute(
            pending_sql,
            {"model": model_id, "after": after, "limit": batch_size, "version": version},
        ).fetchall()
        if not batch:
            break
        texts = [embedding_input(title, path, text) for _, title, path, text in batch]
        with timed_call("embedding"):
            vectors = embedder.embed_documents(texts)
        invalid = invalid_rows(vectors)
        record_vectors(model_id, len(batch), int(invalid.sum()))
        with conn.transaction(), conn.cursor() as cur:
            # Persisted with the batch: the run's own counters die with its process.
            bump(conn, "kb_pipeline_vectors", {"model": model_id}, len(batch))
            bump(conn, "kb_pipeline_invalid_vectors", {"model": model_id}, int(invalid.sum()))
            cur.executemany(
                "UPDATE chunks SET embedding = %s, embedding_model = %s WHERE id = %s",
                [
                    (vec, model_id, row[0])
                    for vec, row, bad in zip(vectors, batch, invalid, strict=True)
                    if not bad
                ],
            )
        for row, bad in zip(batch, invalid, strict=True):
            if bad:
                log.error("embedding of chunk %s is zero or not finite; left unembedded", row[0])
        after = batch[-1][0]
        result.embedded += len(batch) - int(invalid.sum())
        result.invalid += int(invalid.sum())
        progress(result.embedded + result.invalid, total)
    result.seconds = time.perf_counter() - started
    return result


def _fork_for_model(
    conn: psycopg.Connection[Any], version: int, model_id: str, namespace: str
) -> int:
    """Copy the candidate's shared rows that lack a vector of ``model_id`` into it."""
    conn.execute(
        """
        CREATE TEMP TABLE fork ON COMMIT DROP AS
        SELECT c.id AS old_id, nextval(pg_get_serial_sequence('chunks', 'id')) AS new_id
        FROM chunks c
        WHERE c.namespace = %(ns)s AND c.valid_from < %(v)s AND c.valid_to IS NULL
          AND c.embedding_model IS DISTINCT FROM %(model)s
        """,
        {"ns": namespace, "v": version, "model": model_id},
    )
    forked = conn.execute(
        """
        INSERT INTO chunks (id, document_id, ordinal, heading_path, text, content_hash, tsv,
                            lexical_length, namespace, title, valid_from, pii_checked_at)
        OVERRIDING SYSTEM VALUE
        SELECT f.new_id, c.document_id, c.ordinal, c.heading_path, c.text, c.content_hash,
               c.tsv, c.lexical_length, c.namespace, c.title, %(v)s, c.pii_checked_at
        FROM fork f JOIN chunks c ON c.id = f.old_id
        """,
        {"v": version},
    ).rowcount
    if forked:
        conn.execute(
            """
            INSERT INTO chunk_terms (chunk_id, term, namespace, document_id, tf, length, impact,
                                     valid_from)
            SELECT f.new_id, t.term, t.namespace, t.document_id, t.tf, t.length, t.impact, %(v)s
            FROM fork f JOIN chunk_terms t ON t.chunk_id = f.old_id
            """,
            {"v": version},
        )
        conn.execute(
            "UPDATE chunks SET valid_to = %(v)s WHERE id IN (SELECT old_id FROM fork)",
            {"v": version},
        )
        conn.execute(
            "UPDATE chunk_terms SET valid_to = %(v)s WHERE chunk_id IN (SELECT old_id FROM fork)",
            {"v": version},
        )
        log.info("model %s differs from the active version's: %s rows copied", model_id, forked)
    return forked
