-- Nothing personal at rest: documents keep only scrubbed text and content hashes.
--
-- Until now the raw source body (documents.raw_body) and its unscrubbed Markdown
-- (documents.markdown) sat in the database the bot reads, and the title column held the
-- raw title. From this version the sync converts and scrubs every new or changed
-- document before writing it (kb_core.index.documents.Preparer): title and markdown are
-- the scrubbed ones, content_hash (sha256 of the raw title + body) tells a refresh
-- whether the source changed, and prepared_with records the scrubbing configuration the
-- text went through. Whatever needs the raw text fetches it from the source again
-- (`kb index rescrub`).
--
-- Existing rows cannot be scrubbed in SQL, so their raw and unscrubbed columns are
-- purged and the documents marked for a re-fetch: the content hash is emptied (every
-- document differs from what the source will deliver) and the sync cursors are dropped
-- (incremental sources list everything once more). The chunks built from the old text
-- keep serving until the re-fetched, re-scrubbed version is promoted; they, their
-- postings and version statistics are then rebuilt by the normal refresh.
ALTER TABLE documents DROP COLUMN raw_body;
ALTER TABLE documents ADD COLUMN prepared_with text;
UPDATE documents
SET title = coalesce(safe_title, ''),
    markdown = NULL,
    markdown_hash = NULL,
    content_hash = '',
    chunked_hash = NULL;
DELETE FROM source_state;

-- Names of the organisation's people (Pyrus members, contacts of configured catalogs)
-- as keyed hashes of their lemmas, never the names: the scrubber and the verifier use
-- them as a deny list in every case form (kb_core.pii.directory).
CREATE TABLE person_directory (
    lemma_hash  text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('name', 'surname', 'patronymic', 'word')),
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
