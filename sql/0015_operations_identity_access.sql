-- Operations, identities and source permissions (issue 25).

-- Counters of the pipeline, its sensors and the daemon, kept in the database so the bot
-- API can serve them at /metrics: those processes are short-lived (a run, a sensor tick)
-- and nothing scrapes them. One row per metric and label set; the value only grows.
CREATE TABLE ops_counters (
    metric     text NOT NULL,
    labels     jsonb NOT NULL DEFAULT '{}'::jsonb,
    value      double precision NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, labels)
);

-- Who may read a document, as its source says (Confluence page and space restrictions,
-- Pyrus form access). No row: every reader may. A row: only members of one of ``groups``
-- (empty: nobody). Not versioned with the index on purpose: a revoked permission takes
-- effect at the next sync, without waiting for a promotion.
CREATE TABLE document_access (
    document_id bigint PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    groups      text[] NOT NULL,
    origin      text NOT NULL,                -- what the groups come from, e.g. confluence:page
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who searched, asked for an answer, gave feedback or approved a correction in the
-- console and its API. ``subject`` is a keyed pseudonym of the signed-in identity (never
-- a name or an e-mail); ``query`` is scrubbed of personal data. Rows older than
-- KB_AUDIT_RETENTION_DAYS are deleted by index maintenance.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    subject    text NOT NULL,
    roles      text[] NOT NULL DEFAULT '{}',
    action     text NOT NULL,
    query      text,
    status     integer NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
