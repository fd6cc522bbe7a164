-- Index versions: readers see one promoted version; a refresh writes a candidate.
--
-- Chunk rows are shared between versions instead of copied: a row is part of version V
-- when valid_from <= V and (valid_to IS NULL OR valid_to > V). A refresh that replaces a
-- document's chunks inserts the new rows with valid_from = candidate and closes the old
-- ones with valid_to = candidate, so the active version keeps seeing the old rows until
-- the candidate is promoted, and an unchanged document costs nothing. Rows closed before
-- the oldest version still kept are purged by maintenance. Version ids come from one
-- sequence but belong to one namespace; chunks carry their namespace so versions of
-- different namespaces never see each other's rows.
CREATE TABLE index_versions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace       text NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('candidate', 'active', 'retired', 'purged')),
    base_version    bigint REFERENCES index_versions (id),
    embedding_model text,                         -- set when the candidate is embedded
    dimension       integer,
    chunks          integer,                      -- statistics, set when promoted
    documents       integer,
    avg_length      double precision,             -- mean chunk length in lemmas (BM25)
    created_at      timestamptz NOT NULL DEFAULT now(),
    promoted_at     timestamptz,
    retired_at      timestamptz,
    report          jsonb NOT NULL DEFAULT '{}'::jsonb  -- promotion gates and their results
);
CREATE UNIQUE INDEX index_versions_one_candidate ON index_versions (namespace)
    WHERE status = 'candidate';
CREATE UNIQUE INDEX index_versions_one_active ON index_versions (namespace)
    WHERE status = 'active';

-- Document frequency of every lemma in a version (BM25 IDF), written at promotion from
-- the base version's figures plus the candidate's changes.
CREATE TABLE version_terms (
    version_id bigint NOT NULL REFERENCES index_versions (id) ON DELETE CASCADE,
    term       text NOT NULL,
    df         integer NOT NULL,
    PRIMARY KEY (version_id, term)
);

-- Existing chunks become version 1 of their namespace, already active.
INSERT INTO index_versions (namespace, status, promoted_at)
SELECT DISTINCT namespace, 'active', now() FROM documents;

ALTER TABLE chunks ADD COLUMN namespace text;
ALTER TABLE chunks ADD COLUMN title text;        -- the scrubbed title shown with a hit
ALTER TABLE chunks ADD COLUMN valid_from bigint;
ALTER TABLE chunks ADD COLUMN valid_to bigint;
UPDATE chunks c
SET namespace = d.namespace, title = coalesce(d.safe_title, d.title), valid_from = v.id
FROM documents d JOIN index_versions v ON v.namespace = d.namespace
WHERE d.id = c.document_id;
ALTER TABLE chunks ALTER COLUMN namespace SET NOT NULL;
ALTER TABLE chunks ALTER COLUMN title SET NOT NULL;
ALTER TABLE chunks ALTER COLUMN valid_from SET NOT NULL;
CREATE INDEX chunks_document_live ON chunks (document_id) WHERE valid_to IS NULL;
CREATE INDEX chunks_valid_from ON chunks (valid_from);
CREATE INDEX chunks_valid_to ON chunks (valid_to) WHERE valid_to IS NOT NULL;

-- Postings for BM25, rebuilt with what a query needs, so a lexical search reads only
-- this table: per query term it takes the postings in impact order (the BM25
-- term-frequency part for a reference length, fixed when written) and stops after a
-- bounded number (kb_core.search.lexical). Visibility columns repeat the chunk's.
ALTER TABLE chunk_terms RENAME TO chunk_terms_old;
CREATE TABLE chunk_terms (
    chunk_id    bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    term        text NOT NULL,
    namespace   text NOT NULL,
    document_id bigint NOT NULL,
    tf          integer NOT NULL,
    length      integer NOT NULL,               -- the chunk's length in lemmas
    impact      real NOT NULL,
    valid_from  bigint NOT NULL,
    valid_to    bigint,
    PRIMARY KEY (chunk_id, term)
);
INSERT INTO chunk_terms
SELECT o.chunk_id, o.term, c.namespace, c.document_id, o.tf, c.lexical_length,
       o.tf / (o.tf + 1.2 * (0.25 + 0.75 * c.lexical_length / 400.0)), c.valid_from, NULL
FROM chunk_terms_old o JOIN chunks c ON c.id = o.chunk_id;
DROP TABLE chunk_terms_old;
-- Covering: a query reads each term's best postings from contiguous index pages
-- (index-only scan) instead of one random heap page per posting.
CREATE INDEX chunk_terms_postings ON chunk_terms (namespace, term, impact DESC)
    INCLUDE (chunk_id, document_id, tf, length, valid_from, valid_to);

-- Rows of several versions may hold the same ordinal of a document.
ALTER TABLE chunks DROP CONSTRAINT chunks_document_ordinal_key;
