-- The bot in a real ticket: the agent's send command, explicit acceptances and
-- corrections, and who decided the category.

-- The agent's command to send the bot's draft to the customer is a job of its own kind.
ALTER TABLE bot_jobs DROP CONSTRAINT bot_jobs_trigger_check;
ALTER TABLE bot_jobs ADD CONSTRAINT bot_jobs_trigger_check
    CHECK (trigger IN ('new_ticket', 'mention', 'correction', 'send'));

-- The bot proposes a category, people decide: the field is written only when no person
-- has set it. human_category is the person's choice the bot found (NULL: none yet).
ALTER TABLE bot_interactions ADD COLUMN human_category text,
                             ADD COLUMN category_written boolean;

-- What an agent explicitly did with a draft: sent it to the customer (an acceptance) or
-- marked it wrong (a correction). One row per job; a draft is sent at most once.
CREATE TABLE agent_actions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL UNIQUE REFERENCES bot_jobs (id),
    task_id         bigint NOT NULL,
    interaction_id  bigint REFERENCES bot_interactions (id),
    action          text NOT NULL CHECK (action IN ('sent', 'corrected')),
    comment_id      bigint,                 -- the customer-channel reply, for 'sent'
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_actions_task ON agent_actions (task_id);
CREATE UNIQUE INDEX agent_actions_sent_once ON agent_actions (interaction_id)
    WHERE action = 'sent';

-- The explicit action, next to the similarity-based outcome it overrides.
ALTER TABLE ticket_outcomes ADD COLUMN agent_action text
    CHECK (agent_action IN ('sent', 'corrected'));
