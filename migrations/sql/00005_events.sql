-- +goose Up
-- The event log behind GET /api/v1/events. Rows are written by the triggers
-- below, in the transaction of the change they describe: no event for a change
-- that rolled back, no change without its event. Readers go in (txid, id)
-- order and only read transactions older than their snapshot's xmin, so an
-- event committed after a later-numbered one is never skipped.
-- agent_ids and queue_ids say who may see an event (admins see all): the
-- agents named, and the agents of the queues named.
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type       text NOT NULL,
    chat_id    uuid,
    agent_ids  uuid[] NOT NULL DEFAULT '{}',
    queue_ids  uuid[] NOT NULL DEFAULT '{}',
    data       jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txid, id)
);
CREATE INDEX events_created ON events (created_at);

-- The newest position pruned: a reader resuming before it gets a resync.
CREATE TABLE event_horizon (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    txid xid8 NOT NULL,
    id   bigint NOT NULL
);
INSERT INTO event_horizon (txid, id) VALUES ('0', 0);

-- +goose StatementBegin
CREATE FUNCTION omnichat_emit(etype text, chat uuid, agents uuid[], queues uuid[], payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, chat_id, agent_ids, queue_ids, data)
    VALUES (etype, chat, array_remove(agents, NULL), array_remove(queues, NULL), payload);
    -- A wake-up only: listeners read the log. Sent at commit, never on rollback.
    PERFORM pg_notify('omnichat_events', '');
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The queues whose agents see a chat in this state: a waiting chat of an
-- all_agents queue is offered to all of them; a bot-owned chat is listed to them.
CREATE FUNCTION omnichat_chat_queues(status text, queue uuid) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN status = 'bot' THEN ARRAY[queue]
        WHEN status = 'waiting' AND EXISTS (SELECT 1 FROM queues q WHERE q.id = queue AND q.routing_rule = 'all_agents') THEN ARRAY[queue]
        ELSE '{}'::uuid[]
    END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION omnichat_unread(chat chats) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM messages m WHERE m.chat_id = chat.id AND m.direction = 'inbound'
       AND m.created_at > COALESCE(chat.agent_read_at, '-infinity'::timestamptz)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION omnichat_chat_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_q  uuid[] := omnichat_chat_queues(NEW.status, NEW.queue_id);
    old_q  uuid[];
    etype  text;
    reason text;
    body   jsonb;
BEGIN
    body := jsonb_build_object('chat_id', NEW.id, 'status', NEW.status, 'agent_id', NEW.agent_id,
        'queue_id', NEW.queue_id, 'close_reason', NEW.close_reason);
    etype := CASE NEW.status
        WHEN 'offered' THEN 'chat.offered'
        WHEN 'in_progress' THEN 'chat.assigned'
        WHEN 'closed' THEN 'chat.closed'
        WHEN 'bot' THEN 'chat.bot'
        ELSE CASE WHEN cardinality(new_q) > 0 THEN 'chat.offered' ELSE 'chat.waiting' END END;
    IF TG_OP = 'INSERT' THEN
        PERFORM omnichat_emit(etype, NEW.id, ARRAY[NEW.agent_id], new_q, body);
        RETURN NULL;
    END IF;

    IF OLD.status IS DISTINCT FROM NEW.status OR OLD.agent_id IS DISTINCT FROM NEW.agent_id OR OLD.queue_id IS DISTINCT FROM NEW.queue_id THEN
        old_q := omnichat_chat_queues(OLD.status, OLD.queue_id);
        reason := CASE
            WHEN NEW.status = 'closed' THEN 'closed'
            WHEN OLD.queue_id IS DISTINCT FROM NEW.queue_id OR OLD.status = 'in_progress' THEN 'transferred'
            WHEN OLD.status = 'offered' AND NEW.status = 'waiting' THEN 'expired'
            WHEN NEW.status = 'in_progress' AND OLD.status = 'offered' AND OLD.agent_id IS DISTINCT FROM NEW.agent_id THEN 'transferred'
            WHEN NEW.status = 'in_progress' THEN 'accepted'
            WHEN NEW.status = 'offered' THEN 'routed'
            ELSE 'changed' END;
        body := body || jsonb_build_object('previous_status', OLD.status, 'previous_agent_id', OLD.agent_id, 'reason', reason);
        -- Those who saw the chat and no longer do learn it left them.
        IF OLD.agent_id IS NOT NULL AND OLD.agent_id IS DISTINCT FROM NEW.agent_id AND NEW.status <> 'closed' THEN
            PERFORM omnichat_emit(CASE WHEN OLD.status = 'offered' THEN 'chat.offer_withdrawn' ELSE 'chat.unassigned' END,
                NEW.id, ARRAY[OLD.agent_id], '{}', body);
        END IF;
        IF cardinality(old_q) > 0 AND old_q IS DISTINCT FROM new_q THEN
            PERFORM omnichat_emit(CASE WHEN OLD.status = 'waiting' THEN 'chat.offer_withdrawn' ELSE 'chat.unassigned' END,
                NEW.id, '{}', old_q, body);
        END IF;
        -- A closed chat is news to whoever last saw it.
        PERFORM omnichat_emit(etype, NEW.id,
            CASE WHEN NEW.status = 'closed' THEN ARRAY[NEW.agent_id, OLD.agent_id] ELSE ARRAY[NEW.agent_id] END,
            CASE WHEN NEW.status = 'closed' THEN old_q ELSE new_q END, body);
    END IF;

    IF OLD.agent_read_at IS DISTINCT FROM NEW.agent_read_at THEN
        PERFORM omnichat_emit('unread.changed', NEW.id, ARRAY[NEW.agent_id], '{}',
            jsonb_build_object('chat_id', NEW.id, 'unread_messages', omnichat_unread(NEW)));
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER chats_events AFTER INSERT OR UPDATE OF status, agent_id, queue_id, agent_read_at ON chats
    FOR EACH ROW EXECUTE FUNCTION omnichat_chat_event();

-- +goose StatementBegin
-- A message event reaches whoever sees the message's chat now. It carries no
-- unread count: counting costs a scan of the chat's messages on every insert;
-- readers get it with the chat (unread.changed is sent when a chat is read).
CREATE FUNCTION omnichat_message_emit(etype text, message uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m messages;
    c chats;
BEGIN
    SELECT * INTO m FROM messages WHERE id = message;
    SELECT * INTO c FROM chats WHERE id = m.chat_id;
    IF c.id IS NULL THEN
        RETURN;
    END IF;
    PERFORM omnichat_emit(etype, c.id, ARRAY[c.agent_id], omnichat_chat_queues(c.status, c.queue_id),
        jsonb_build_object('chat_id', c.id, 'message_id', m.id, 'direction', m.direction, 'status', m.status,
            'fail_reason', m.fail_reason, 'edited', m.edited_at IS NOT NULL));
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION omnichat_message_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM omnichat_message_emit('message.created', NEW.id);
    ELSIF OLD.status IS DISTINCT FROM NEW.status OR OLD.text IS DISTINCT FROM NEW.text OR OLD.edited_at IS DISTINCT FROM NEW.edited_at THEN
        PERFORM omnichat_message_emit(CASE WHEN OLD.status IS DISTINCT FROM NEW.status THEN 'message.status' ELSE 'message.edited' END, NEW.id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER messages_events AFTER INSERT OR UPDATE OF status, text, edited_at ON messages
    FOR EACH ROW EXECUTE FUNCTION omnichat_message_event();

-- +goose StatementBegin
-- A file stored (or failed) changes how its message shows.
CREATE FUNCTION omnichat_attachment_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.message_id IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status OR OLD.message_id IS DISTINCT FROM NEW.message_id) THEN
        PERFORM omnichat_message_emit('message.updated', NEW.message_id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER attachments_events AFTER INSERT OR UPDATE OF status, message_id ON attachments
    FOR EACH ROW EXECUTE FUNCTION omnichat_attachment_event();

-- +goose StatementBegin
-- An agent's status; the writer may say why with
-- set_config('omnichat.status_reason', 'offer_expired', true).
CREATE FUNCTION omnichat_user_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        PERFORM omnichat_emit('agent.status', NULL, ARRAY[NEW.id], '{}', jsonb_build_object('user_id', NEW.id, 'status', NEW.status,
            'reason', COALESCE(NULLIF(current_setting('omnichat.status_reason', true), ''), 'changed')));
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER users_events AFTER UPDATE OF status ON users
    FOR EACH ROW EXECUTE FUNCTION omnichat_user_event();

-- Panel sign-in: a bcrypt hash, and sessions kept by the hash of their cookie.
ALTER TABLE users ADD COLUMN password_hash text;

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN password_hash;
DROP TRIGGER users_events ON users;
DROP FUNCTION omnichat_user_event();
DROP TRIGGER attachments_events ON attachments;
DROP FUNCTION omnichat_attachment_event();
DROP TRIGGER messages_events ON messages;
DROP FUNCTION omnichat_message_event();
DROP FUNCTION omnichat_message_emit(text, uuid);
DROP TRIGGER chats_events ON chats;
DROP FUNCTION omnichat_chat_event();
DROP FUNCTION omnichat_unread(chats);
DROP FUNCTION omnichat_chat_queues(text, uuid);
DROP FUNCTION omnichat_emit(text, uuid, uuid[], uuid[], jsonb);
DROP TABLE event_horizon;
DROP TABLE events;
