-- issue 24: source events (Confluence webhooks, Pyrus "ticket closed") waiting for an
-- incremental refresh of just the documents they name. Durable: an event is written
-- before the webhook is acknowledged and marked processed in the same transaction as
-- the documents it caused to be written.
CREATE TABLE source_events (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,              -- confluence | pyrus
    kind         text NOT NULL,              -- page_created, page_updated, page_removed,
                                             -- attachment_created, ticket_closed
    external_id  text NOT NULL,              -- page id / task id
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    error        text
);

CREATE INDEX source_events_pending ON source_events (id) WHERE processed_at IS NULL;
