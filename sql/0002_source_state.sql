-- Per-source sync state (cursors of incremental syncs), kept beside the data it
-- describes so that a restored database resumes from the right place.
CREATE TABLE source_state (
    source     text PRIMARY KEY,
    cursor     jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
