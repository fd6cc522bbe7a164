-- The bot's durable work queue and its record of what it answered.
--
-- A webhook becomes one job, deduplicated on (task id, last comment id): Pyrus retries a
-- webhook after 61 s and 122 s, and a retry must never produce a second comment. Jobs
-- hold no ticket text (the worker fetches the task fresh), so nothing personal is stored
-- before it is scrubbed. Workers claim jobs with FOR UPDATE SKIP LOCKED under a lease;
-- a job whose worker died is claimed again when its lease expires.
CREATE TABLE bot_jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key   text NOT NULL UNIQUE,
    task_id      bigint NOT NULL,
    comment_id   bigint,
    trigger      text NOT NULL CHECK (trigger IN ('new_ticket', 'mention')),
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    run_after    timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    worker       text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX bot_jobs_ready ON bot_jobs (run_after) WHERE status IN ('queued', 'running');

-- One row per answered job: what was asked (scrubbed), what was found, what was posted.
CREATE TABLE bot_interactions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES bot_jobs (id),
    task_id         bigint NOT NULL,
    trigger         text NOT NULL,
    index_version   bigint REFERENCES index_versions (id),
    query           text NOT NULL,               -- scrubbed
    retrieved       jsonb NOT NULL,              -- [{doc_id, chunk_id, source, external_id, score}]
    answer          jsonb NOT NULL,              -- category, recommendations, draft, sources
    mode            text NOT NULL,               -- llm | extractive
    category        text,
    confidence      double precision,
    comment_id      bigint,
    retrieval_ms    double precision,
    generation_ms   double precision,
    total_ms        double precision,            -- job claimed → comment posted
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_interactions_task ON bot_interactions (task_id);
