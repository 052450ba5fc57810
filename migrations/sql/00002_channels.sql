-- +goose Up
ALTER TABLE messages ADD COLUMN kind text NOT NULL DEFAULT 'text';
ALTER TABLE messages ADD COLUMN edited_at timestamptz;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('received', 'sending', 'sent', 'delivered', 'read', 'failed'));

-- 'bot': a bot app owns the conversation (Messenger handover); stored, not routed.
ALTER TABLE chats DROP CONSTRAINT chats_status_check;
ALTER TABLE chats ADD CONSTRAINT chats_status_check
    CHECK (status IN ('bot', 'waiting', 'offered', 'in_progress', 'closed'));

CREATE TABLE attachments (
    id          uuid PRIMARY KEY,
    channel_id  uuid NOT NULL REFERENCES channels (id),
    message_id  uuid REFERENCES messages (id),
    kind        text NOT NULL,
    remote_id   text NOT NULL DEFAULT '',
    remote_url  text NOT NULL DEFAULT '',
    name        text NOT NULL DEFAULT '',
    media_type  text NOT NULL DEFAULT '',
    size        bigint NOT NULL DEFAULT 0,
    content     bytea,
    status      text NOT NULL CHECK (status IN ('pending', 'stored', 'failed')),
    fail_reason text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_message ON attachments (message_id);

ALTER TABLE contacts ADD COLUMN photo_attachment_id uuid REFERENCES attachments (id);

-- +goose Down
ALTER TABLE contacts DROP COLUMN photo_attachment_id;
DROP TABLE attachments;
ALTER TABLE chats DROP CONSTRAINT chats_status_check;
ALTER TABLE chats ADD CONSTRAINT chats_status_check CHECK (status IN ('waiting', 'offered', 'in_progress', 'closed'));
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN ('received', 'sending', 'sent', 'failed'));
ALTER TABLE messages DROP COLUMN edited_at;
ALTER TABLE messages DROP COLUMN kind;
