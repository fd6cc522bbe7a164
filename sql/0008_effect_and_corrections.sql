-- Measured effect per ticket, and the correction loop's bookkeeping.

-- An agent's correction of a bot answer is a job of its own kind.
ALTER TABLE bot_jobs DROP CONSTRAINT bot_jobs_trigger_check;
ALTER TABLE bot_jobs ADD CONSTRAINT bot_jobs_trigger_check
    CHECK (trigger IN ('new_ticket', 'mention', 'correction'));

-- How the bot chose the category: llm | knn | keywords | fallback.
ALTER TABLE bot_interactions ADD COLUMN category_method text,
                             ADD COLUMN category_confidence double precision;

-- One row per «Актуализация RAG» task the bot filed from a ticket. The unique job keeps a
-- retried job from filing the same correction twice.
CREATE TABLE correction_requests (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id             bigint NOT NULL UNIQUE REFERENCES bot_jobs (id),
    ticket_id          bigint NOT NULL,
    correction_task_id bigint NOT NULL,
    reason             text NOT NULL CHECK (reason IN ('mention', 'field')),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX correction_requests_ticket ON correction_requests (ticket_id);

-- One row per helpdesk ticket: its category and what the bot's help amounted to. Numbers
-- and labels only: no ticket text, so no personal data.
CREATE TABLE ticket_outcomes (
    task_id             bigint PRIMARY KEY,
    form_id             bigint,
    day                 date NOT NULL,          -- creation day in KB_STATS_TIMEZONE
    category            text NOT NULL,
    category_source     text NOT NULL,          -- agent | bot | classifier
    category_confidence double precision,
    bot_category        text,
    bot_answered        boolean NOT NULL,
    bot_mode            text,                   -- llm | extractive
    draft_similarity    double precision,       -- chrF of the agent's reply vs the draft, 0..1
    outcome             text NOT NULL,          -- accepted | edited | rewritten | not_used | no_reply
    first_response_s    double precision,
    resolution_s        double precision,
    is_closed           boolean NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_outcomes_day ON ticket_outcomes (day);
