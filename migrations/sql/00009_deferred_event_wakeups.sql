-- +goose Up
-- NOTIFY takes a lock that PostgreSQL holds from before a transaction's
-- commit until after it, WAL flush included, for the whole server: every
-- transaction that notifies commits one after another. On the ingest path
-- (hundreds of messages a second) that queue was most of the webhooks'
-- tail latency. A transaction may now defer its wake-up
-- (omnichat.defer_notify = 'on', set locally): the trigger writes the event
-- but does not notify, and the writer sends the wake-up after its commit in
-- a transaction of its own that waits for no flush (models.Store.WakeEvents).
-- A wake-up lost to a crash in between is caught by the readers' poll.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION omnichat_emit(etype text, chat uuid, agents uuid[], queues uuid[], payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, chat_id, agent_ids, queue_ids, data)
    VALUES (etype, chat, array_remove(agents, NULL), array_remove(queues, NULL), payload);
    -- A wake-up only: listeners read the log. Sent at commit, never on
    -- rollback, unless the writer sends it itself after its commit.
    IF current_setting('omnichat.defer_notify', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('omnichat_events', '');
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION omnichat_emit(etype text, chat uuid, agents uuid[], queues uuid[], payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, chat_id, agent_ids, queue_ids, data)
    VALUES (etype, chat, array_remove(agents, NULL), array_remove(queues, NULL), payload);
    -- A wake-up only: listeners read the log. Sent at commit, never on rollback.
    PERFORM pg_notify('omnichat_events', '');
END $$;
-- +goose StatementEnd
