-- +goose Up
-- Inbound messages for an open chat are stored by the API itself.
-- direct_ingest: the chat's workflow takes messages from Postgres (chats its
-- earlier releases opened keep receiving them as signals).
-- customer_waiting: the customer wrote after the agent's last reply. The
-- message's transaction sets it on the chat row, an agent's reply clears it,
-- and the close on the completion timeout requires it false: the row lock
-- decides between the two, so a message never lands in a chat that closed.
ALTER TABLE chats ADD COLUMN direct_ingest boolean NOT NULL DEFAULT false;

-- Messages of a conversation that went to its workflow by signal, numbered.
-- The API holds the conversation's advisory lock while it signals and records
-- the number, so the numbers are in the order of the workflow's history; the
-- workflow turns direct_ingest on (under the same lock) only once it has
-- received the last number, so messages stay in arrival order.
CREATE TABLE conversation_gates (
    channel_id      uuid NOT NULL,
    conversation_id text NOT NULL,
    signalled       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, conversation_id)
);
ALTER TABLE chats ADD COLUMN customer_waiting boolean NOT NULL DEFAULT false;

-- What a chat's workflow must still be told about messages stored without it
-- (a file to download, the customer answering while the completion timer
-- runs). Written in the message's transaction, drained into signals with
-- FOR UPDATE SKIP LOCKED, retried with backoff.
CREATE TABLE chat_notices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id     uuid NOT NULL,
    workflow_id text NOT NULL,
    kind        text NOT NULL,
    ref         text NOT NULL DEFAULT '',
    attempts    integer NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_notices_due ON chat_notices (next_at, id);

-- +goose Down
DROP TABLE conversation_gates;
DROP TABLE chat_notices;
ALTER TABLE chats DROP COLUMN customer_waiting;
ALTER TABLE chats DROP COLUMN direct_ingest;
