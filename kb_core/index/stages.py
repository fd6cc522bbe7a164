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

from kb_core.embeddings.base import Embedder
from kb_core.index.vector_index import ensure_vector_index
from kb_core.models import sha256_text
from kb_core.pii.scrubber import count_placeholders
from kb_core.text.chunking import ChunkerConfig, chunk_markdown
from kb_core.text.lemmas import term_counts
from kb_core.text.markdown import to_markdown

log = logging.getLogger(__name__)

# PostgreSQL text-search configuration of the full-text column.
TS_CONFIG = "russian"
# Version of the lemma counts written for BM25 (kb_core.text.lemmas); a change re-chunks.
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
    embeddings_carried: int = 0
    placeholders: int = 0  # personal data replaced, counted by placeholder


@dataclass
class EmbedResult:
    model_id: str
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    index_created: bool = False

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def convert_pending(
    conn: psycopg.Connection[Any], progress: Progress = _no_progress, *, namespace: str = "kb"
) -> ConvertResult:
    """Convert every live document whose Markdown is stale.

    A document that fails to convert keeps its previous Markdown (if any), is reported,
    and does not stop the others.
    """
    rows = conn.execute(
        """
        SELECT id, external_id, raw_format, raw_body, content_hash FROM documents
        WHERE deleted_at IS NULL AND markdown_hash IS DISTINCT FROM content_hash
          AND namespace = %s
        ORDER BY id
        """,
        (namespace,),
    ).fetchall()
    result = ConvertResult()
    for done, (doc_id, external_id, raw_format, raw_body, content_hash) in enumerate(rows, 1):
        try:
            markdown = to_markdown(raw_format, raw_body)
        except Exception as exc:  # a converter bug must not sink the whole refresh
            log.exception("cannot convert document %s (%s)", doc_id, external_id)
            result.failures.append(
                StageFailure(doc_id, external_id, f"{type(exc).__name__}: {exc}")
            )
            continue
        with conn.transaction():
            conn.execute(
                "UPDATE documents SET markdown = %s, markdown_hash = %s WHERE id = %s",
                (markdown, content_hash, doc_id),
            )
        result.converted += 1
        progress(done, len(rows))
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

    Stale means: the content, the chunker or the scrubbing configuration changed. With
    ``scrub``, personal data in the title and the Markdown is replaced by placeholders
    BEFORE chunking, so chunks, embeddings and the full-text column never see it.
    Documents are scrubbed a batch at a time (``scrub`` may fan out to processes); each
    document's chunks are replaced in one transaction, and embeddings of chunks whose
    text did not change are carried over, so editing one paragraph re-embeds one chunk.
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
        result.placeholders += sum(
            count_placeholders(after) - count_placeholders(before)
            for before, after in zip(texts, safe, strict=True)
        )
        for index, (doc_id, _, _) in enumerate(rows):
            title, markdown = safe[2 * index], safe[2 * index + 1]
            result.chunks_written += _write_chunks(
                conn, doc_id, title, markdown, config, batch[doc_id] + stamp_suffix, result
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
) -> int:
    chunks = chunk_markdown(markdown, config)
    with conn.transaction():
        previous = {
            h: (emb, model)
            for h, emb, model in conn.execute(
                "SELECT content_hash, embedding, embedding_model FROM chunks "
                "WHERE document_id = %s AND embedding IS NOT NULL",
                (doc_id,),
            )
        }
        conn.execute("DELETE FROM chunks WHERE document_id = %s", (doc_id,))
        for chunk in chunks:
            chunk_hash = sha256_text(embedding_input(title, chunk.heading_path, chunk.text))
            embedding, model = previous.get(chunk_hash, (None, None))
            result.embeddings_carried += embedding is not None
            head = " ".join([title, *chunk.heading_path])
            counts = term_counts(f"{head}\n{chunk.text}")
            inserted = conn.execute(
                f"""
                INSERT INTO chunks (document_id, ordinal, heading_path, text, content_hash,
                                    embedding, embedding_model, tsv, lexical_length)
                VALUES (%(doc)s, %(ordinal)s, %(path)s, %(text)s, %(hash)s,
                        %(embedding)s, %(model)s,
                        setweight(to_tsvector('{TS_CONFIG}', %(head)s), 'A')
                        || setweight(to_tsvector('{TS_CONFIG}', %(text)s), 'B'),
                        %(length)s)
                RETURNING id
                """,
                {
                    "doc": doc_id,
                    "ordinal": chunk.ordinal,
                    "path": list(chunk.heading_path),
                    "text": chunk.text,
                    "hash": chunk_hash,
                    "embedding": embedding,
                    "model": model,
                    "head": head,
                    "length": sum(counts.values()),
                },
            ).fetchone()
            assert inserted is not None
            with conn.cursor().copy("COPY chunk_terms (term, chunk_id, tf) FROM STDIN") as copy:
                for term, tf in counts.items():
                    copy.write_row((term, inserted[0], tf))
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
) -> EmbedResult:
    """Embed every chunk that has no vector from the current model.

    Identical texts already embedded by the same model anywhere in the base are copied
    instead of recomputed. Batches commit one by one, so an interrupted run keeps its work.
    """
    model_id = embedder.model_id
    result = EmbedResult(model_id=model_id)
    with conn.transaction():
        result.index_created = ensure_vector_index(conn, model_id, embedder.dimension)
        result.reused = conn.execute(
            """
            UPDATE chunks c SET embedding = s.embedding, embedding_model = s.embedding_model
            FROM (SELECT DISTINCT ON (content_hash) content_hash, embedding, embedding_model
                  FROM chunks WHERE embedding_model = %(model)s AND embedding IS NOT NULL
                  ORDER BY content_hash, id) s
            WHERE c.content_hash = s.content_hash
              AND (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM %(model)s)
            """,
            {"model": model_id},
        ).rowcount
    pending_sql = """
        SELECT c.id, d.safe_title, c.heading_path, c.text FROM chunks c
        JOIN documents d ON d.id = c.document_id
        WHERE (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM %(model)s)
          AND c.id > %(after)s
        ORDER BY c.id LIMIT %(limit)s
    """
    total_row = conn.execute(
        "SELECT count(*) FROM chunks WHERE embedding IS NULL "
        "OR embedding_model IS DISTINCT FROM %s",
        (model_id,),
    ).fetchone()
    total = int(total_row[0]) if total_row else 0
    after = 0
    started = time.perf_counter()
    while True:
        batch = conn.execute(
            pending_sql, {"model": model_id, "after": after, "limit": batch_size}
        ).fetchall()
        if not batch:
            break
        texts = [embedding_input(title, path, text) for _, title, path, text in batch]
        vectors = embedder.embed_documents(texts)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE chunks SET embedding = %s, embedding_model = %s WHERE id = %s",
                [(vec, model_id, row[0]) for vec, row in zip(vectors, batch, strict=True)],
            )
        after = batch[-1][0]
        result.embedded += len(batch)
        progress(result.embedded, total)
    result.seconds = time.perf_counter() - started
    return result
