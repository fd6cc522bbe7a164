-- Evaluation results per index version, kept so trends survive and regressions show.
--
-- One run evaluates one index version on one golden set in every search mode; its
-- per-case figures are stored next to it. Questions and answers of the golden set are
-- curated (no personal data); nothing here is a customer's text.
CREATE TABLE eval_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    index_version bigint NOT NULL REFERENCES index_versions (id),
    namespace     text NOT NULL DEFAULT 'kb',
    golden_set    text NOT NULL,                 -- name and content hash of the set
    started_at    timestamptz NOT NULL DEFAULT now(),
    seconds       double precision,
    metrics       jsonb NOT NULL DEFAULT '{}'::jsonb,  -- mode → metric → mean
    gate          jsonb NOT NULL DEFAULT '{}'::jsonb,  -- thresholds, baseline, failures
    passed        boolean
);
CREATE INDEX eval_runs_version ON eval_runs (index_version);

CREATE TABLE eval_cases (
    run_id     bigint NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    case_id    text NOT NULL,
    mode       text NOT NULL,
    metrics    jsonb NOT NULL,                   -- hit@k, precision@5, mrr@10, chrf, …
    retrieved  jsonb NOT NULL,                   -- ranked document keys
    duration_s double precision NOT NULL,
    PRIMARY KEY (run_id, case_id, mode)
);
