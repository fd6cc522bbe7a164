-- The controlled comparison: which tickets the bot sat out, and the numbers it is judged on.

-- The arm of every ticket the bot saw while the holdout was on, recorded once, at the
-- first webhook: a later change of the share (or switching the holdout off) never moves
-- a ticket between arms, so the history stays as it was measured.
CREATE TABLE ticket_arms (
    task_id       bigint PRIMARY KEY,
    arm           text NOT NULL CHECK (arm IN ('assisted', 'holdout')),
    holdout_share double precision NOT NULL CHECK (holdout_share >= 0 AND holdout_share <= 1),
    assigned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_arms_arm ON ticket_arms (arm);

-- Two more outcomes per ticket: agent replies through the channel, and whether the
-- ticket was reopened after being closed. Null for rows collected before this column.
ALTER TABLE ticket_outcomes ADD COLUMN agent_replies integer,
                            ADD COLUMN reopened boolean;

-- Categories agents set on tickets, as labelled examples for the category classifier:
-- the vector of the ticket's scrubbed question (no text) and the agent's category. They
-- vote beside the resolved tickets of the index from the day they are collected,
-- instead of waiting for the ticket to be resolved and indexed.
CREATE TABLE category_examples (
    task_id    bigint PRIMARY KEY,
    category   text NOT NULL,
    model_id   text NOT NULL,
    embedding  real[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX category_examples_model ON category_examples (model_id, created_at DESC);
