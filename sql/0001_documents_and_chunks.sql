-- First schema of the knowledge base: source documents and their searchable chunks.
--
-- Every pipeline stage records which version of its input it processed
-- (markdown_hash, chunked_hash), so a refresh finds its work with one indexed query and
-- an unchanged document costs nothing.
--
-- Vector indexes are NOT created here: pgvector can only index a column of fixed
-- dimension, and the dimension belongs to the embedding model (512 for the packaged USE
-- model, 1024 for BGE-m3). The column is an untyped `vector`; one partial HNSW index per
-- model, on `embedding::vector(<dim>)`, is created by kb_core.index.vector_index when a
-- model first writes embeddings, so a model change never needs a schema change.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text NOT NULL,              -- files | confluence | pyrus | correction
    external_id       text NOT NULL,              -- id inside the source (path, page id, task id)
    title             text NOT NULL,
    url               text,
    raw_format        text NOT NULL,              -- markdown | html | confluence_storage | ...
    raw_body          text NOT NULL,
    content_hash      text NOT NULL,              -- sha256 of title + raw body
    markdown          text,
    markdown_hash     text,                       -- content_hash the markdown was made from
    chunked_hash      text,                       -- content_hash + chunker config of the chunks
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_updated_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CONSTRAINT documents_source_external_id_key UNIQUE (source, external_id)
);

-- Work queues of the pipeline stages: live documents whose stage output is stale.
CREATE INDEX documents_pending_markdown ON documents (id)
    WHERE deleted_at IS NULL AND markdown_hash IS DISTINCT FROM content_hash;
CREATE INDEX documents_live_by_source ON documents (source) WHERE deleted_at IS NULL;

CREATE TABLE chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id     bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal         integer NOT NULL,
    heading_path    text[] NOT NULL DEFAULT '{}',
    text            text NOT NULL,
    content_hash    text NOT NULL,                -- sha256 of the text that is embedded
    embedding       vector,
    embedding_model text,
    -- Filled by the writer with to_tsvector('russian', ...): title and headings weighted A,
    -- body B. A generated column cannot be used because the expression is not immutable
    -- over text[] and the title lives on the document.
    tsv             tsvector NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chunks_document_ordinal_key UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_tsv_gin ON chunks USING gin (tsv);
-- Embedding reuse: an identical text already embedded with the same model is copied.
CREATE INDEX chunks_content_hash_model ON chunks (content_hash, embedding_model);
CREATE INDEX chunks_pending_embedding ON chunks (id) WHERE embedding IS NULL;
