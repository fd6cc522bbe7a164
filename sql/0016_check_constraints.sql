-- Enum-like text columns accept only the values the code writes (issue 21). A typo in
-- a future writer, or a hand-edited row, fails at the INSERT instead of silently
-- dropping out of every report that filters on the expected values. The sets are those
-- of the writers named in each comment; a new value needs a migration that replaces the
-- constraint (as 0008 and 0011 do for bot_jobs.trigger). NULL stays allowed where the
-- column is nullable.

-- kb_core.bot.worker copies the job's trigger and the answer's mode
-- (kb_core.generation.schema.Mode); the category method comes from
-- kb_core.categorize.classifier (knn, knn+keywords, keywords, fallback) or
-- kb_core.bot.context (llm, name_overlap).
ALTER TABLE bot_interactions
    ADD CONSTRAINT bot_interactions_trigger_check
        CHECK (trigger IN ('new_ticket', 'mention', 'correction', 'send')),
    ADD CONSTRAINT bot_interactions_mode_check
        CHECK (mode IN ('llm', 'extractive')),
    ADD CONSTRAINT bot_interactions_category_method_check
        CHECK (category_method IN
               ('llm', 'knn', 'knn+keywords', 'keywords', 'fallback', 'name_overlap'));

-- kb_core.effect.outcomes (Outcome, CategorySource) and kb_core.effect.stats.
ALTER TABLE ticket_outcomes
    ADD CONSTRAINT ticket_outcomes_category_source_check
        CHECK (category_source IN ('agent', 'bot', 'classifier')),
    ADD CONSTRAINT ticket_outcomes_bot_mode_check
        CHECK (bot_mode IN ('llm', 'extractive')),
    ADD CONSTRAINT ticket_outcomes_outcome_check
        CHECK (outcome IN ('accepted', 'edited', 'rewritten', 'not_used', 'no_reply'));

-- kb_core.console.feedback.ANSWER_MODES (anything else is stored as NULL).
ALTER TABLE console_feedback
    ADD CONSTRAINT console_feedback_answer_mode_check
        CHECK (answer_mode IN ('llm', 'extractive'));

-- evals.harness: the retrieval modes and the answer modes.
ALTER TABLE eval_cases
    ADD CONSTRAINT eval_cases_mode_check
        CHECK (mode IN ('hybrid', 'vector', 'lexical', 'default', 'opt_query', 'rerank'));

-- kb_core.sources.events: webhook kinds are mapped onto these three.
ALTER TABLE source_events
    ADD CONSTRAINT source_events_source_check
        CHECK (source IN ('confluence', 'pyrus')),
    ADD CONSTRAINT source_events_kind_check
        CHECK (kind IN ('page_updated', 'page_removed', 'ticket_closed'));

-- kb_core.console.audit.ACTIONS.
ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_action_check
        CHECK (action IN ('search', 'answer', 'feedback', 'approve', 'audit', 'synonyms', 'refused'));

-- kb_core.index.access: Confluence page restrictions and Pyrus form groups.
ALTER TABLE document_access
    ADD CONSTRAINT document_access_origin_check
        CHECK (origin IN ('confluence', 'pyrus:form', 'jira:project'));
