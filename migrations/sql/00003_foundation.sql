-- +goose Up
-- Routing: waiting chats are read first-come, first-served within each queue.
CREATE INDEX chats_waiting_queue ON chats (queue_id, waiting_since, seq) WHERE status = 'waiting';
-- An offer is recorded, then its chat workflow is told; a notification that
-- failed (a crash, Temporal away) is sent again by the dispatcher's safety pass.
ALTER TABLE chats ADD COLUMN offer_notified boolean NOT NULL DEFAULT true;
CREATE INDEX chats_offer_unnotified ON chats (offered_at) WHERE status = 'offered' AND NOT offer_notified;

-- Failures of a provider (a send, a download, a profile, a handover) counted
-- per item, so a database outage never uses up an item's attempts.
CREATE TABLE provider_failures (
    key        text PRIMARY KEY,
    attempts   integer NOT NULL,
    last_error text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The customer blocked the bot (Telegram my_chat_member): replies cannot reach them.
ALTER TABLE contacts ADD COLUMN blocked_at timestamptz;

-- System messages: notes in a conversation that only agents see.
ALTER TABLE messages DROP CONSTRAINT messages_direction_check;
ALTER TABLE messages ADD CONSTRAINT messages_direction_check CHECK (direction IN ('inbound', 'outbound', 'system'));

-- +goose Down
ALTER TABLE messages DROP CONSTRAINT messages_direction_check;
ALTER TABLE messages ADD CONSTRAINT messages_direction_check CHECK (direction IN ('inbound', 'outbound'));
ALTER TABLE contacts DROP COLUMN blocked_at;
DROP TABLE provider_failures;
DROP INDEX chats_offer_unnotified;
ALTER TABLE chats DROP COLUMN offer_notified;
DROP INDEX chats_waiting_queue;
