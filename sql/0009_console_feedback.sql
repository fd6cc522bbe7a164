-- Feedback from the agent console: engineers mark an answer helpful or wrong, optionally
-- with the right answer. A correction also becomes an «Актуализация RAG» task (its id is
-- kept here), so the console feeds the same correction loop as tickets do. Question and
-- correction are stored scrubbed of personal data, like everything else in this database.
CREATE TABLE console_feedback (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at         timestamptz NOT NULL DEFAULT now(),
    engineer           text,
    verdict            text NOT NULL CHECK (verdict IN ('helpful', 'wrong')),
    question           text NOT NULL,
    answer_mode        text,
    index_version      bigint,
    source_documents   bigint[] NOT NULL DEFAULT '{}',
    correction         text,
    correction_task_id bigint
);
CREATE INDEX console_feedback_created_at ON console_feedback (created_at);
