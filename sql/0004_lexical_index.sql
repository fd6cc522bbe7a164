-- Lexical retrieval with true BM25 statistics, kept in PostgreSQL.
--
-- PostgreSQL's ts_rank has neither IDF nor term-frequency saturation, and its Russian
-- snowball stems split forms of one word («печать» → печа, «печатает» → печата). So
-- each chunk's text is lemmatised (pymorphy3) when written, its lemma counts stored
-- here, and search computes Okapi BM25 from them (kb_core.search.lexical).
CREATE TABLE chunk_terms (
    term     text NOT NULL,
    chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    tf       integer NOT NULL,
    PRIMARY KEY (term, chunk_id)
);
CREATE INDEX chunk_terms_chunk ON chunk_terms (chunk_id);

ALTER TABLE chunks ADD COLUMN lexical_length integer NOT NULL DEFAULT 0;

-- Separate collections in one database: the knowledge base is namespace 'kb'; an
-- external benchmark (`kb eval squad`) is indexed under its own name and never mixes
-- with it.
ALTER TABLE documents ADD COLUMN namespace text NOT NULL DEFAULT 'kb';
CREATE INDEX documents_namespace ON documents (namespace) WHERE deleted_at IS NULL;
