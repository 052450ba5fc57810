-- +goose Up
CREATE TABLE users (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    email            text NOT NULL UNIQUE,
    can_manage_chats boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive')),
    last_accepted_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    can_manage_chats boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_members (
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, user_id)
);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE queues (
    id                         uuid PRIMARY KEY,
    name                       text NOT NULL UNIQUE,
    routing_rule               text NOT NULL CHECK (routing_rule IN ('all_agents', 'available_agent')),
    completion_timeout_minutes numeric(12, 4) CHECK (completion_timeout_minutes > 0),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queue_users (
    queue_id uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, user_id)
);

CREATE TABLE queue_roles (
    queue_id uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    role_id  uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, role_id)
);

CREATE TABLE channels (
    id         uuid PRIMARY KEY,
    provider   text NOT NULL,
    name       text NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    queue_id   uuid NOT NULL REFERENCES queues (id),
    secret     text NOT NULL,
    settings   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    id          uuid PRIMARY KEY,
    channel_id  uuid NOT NULL REFERENCES channels (id),
    external_id text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, external_id)
);

CREATE TABLE chats (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    channel_id      uuid NOT NULL REFERENCES channels (id),
    queue_id        uuid NOT NULL REFERENCES queues (id),
    contact_id      uuid NOT NULL REFERENCES contacts (id),
    conversation_id text NOT NULL,
    workflow_id     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('waiting', 'offered', 'in_progress', 'closed')),
    agent_id        uuid REFERENCES users (id),
    waiting_since   timestamptz NOT NULL DEFAULT now(),
    offered_at      timestamptz,
    accepted_at     timestamptz,
    closed_at       timestamptz,
    close_reason    text,
    agent_read_at   timestamptz,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one open chat per customer conversation.
CREATE UNIQUE INDEX chats_one_open ON chats (channel_id, conversation_id) WHERE status <> 'closed';
CREATE INDEX chats_waiting ON chats (waiting_since, seq) WHERE status = 'waiting';
CREATE INDEX chats_agent_load ON chats (agent_id) WHERE status IN ('offered', 'in_progress');
CREATE INDEX chats_queue ON chats (queue_id, seq);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    chat_id         uuid NOT NULL REFERENCES chats (id),
    channel_id      uuid NOT NULL REFERENCES channels (id),
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    external_id     text,
    idempotency_key text,
    text            text NOT NULL,
    sender_name     text NOT NULL DEFAULT '',
    agent_id        uuid REFERENCES users (id),
    status          text NOT NULL CHECK (status IN ('received', 'sending', 'sent', 'failed')),
    fail_reason     text,
    provider_time   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, direction, external_id),
    UNIQUE (chat_id, idempotency_key)
);
CREATE INDEX messages_chat ON messages (chat_id, seq);

CREATE TABLE settings (
    code       text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE setting_files (
    code       text PRIMARY KEY,
    media_type text NOT NULL,
    content    bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE setting_files;
DROP TABLE settings;
DROP TABLE messages;
DROP TABLE chats;
DROP TABLE contacts;
DROP TABLE channels;
DROP TABLE queue_roles;
DROP TABLE queue_users;
DROP TABLE queues;
DROP TABLE api_tokens;
DROP TABLE role_members;
DROP TABLE roles;
DROP TABLE users;
