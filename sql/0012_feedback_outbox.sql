-- Console feedback as an outbox (issue 20): the row is stored first, then the
-- «Актуализация RAG» task is filed from it. Filing used to come before the insert: a
-- failed insert left an orphan task in Pyrus, and a client retrying got a second one.
-- filing: none (nothing to file), pending (to file; retried by the worker), filed,
-- failed (the corrections form refused it; the error is kept).
ALTER TABLE console_feedback
    ADD COLUMN draft           text,
    ADD COLUMN filing          text NOT NULL DEFAULT 'none'
                               CHECK (filing IN ('none', 'pending', 'filed', 'failed')),
    ADD COLUMN filing_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN filing_error    text;
CREATE INDEX console_feedback_pending ON console_feedback (id) WHERE filing = 'pending';
