-- Personal data never reaches what is served: chunks (and so embeddings and the full-text
-- column) are made from scrubbed Markdown, and the title shown with a hit is the
-- scrubbed title. The raw source body stays in documents.raw_body, the staging copy of
-- what the source system itself holds; it is never searched or shown.
ALTER TABLE documents ADD COLUMN safe_title text;

-- When the blocking PII check last re-scanned the chunk and found it clean (NULL: not
-- yet checked). The check scans only unchecked chunks, so a refresh re-scans only what
-- it wrote.
ALTER TABLE chunks ADD COLUMN pii_checked_at timestamptz;
CREATE INDEX chunks_pii_unchecked ON chunks (id) WHERE pii_checked_at IS NULL;
