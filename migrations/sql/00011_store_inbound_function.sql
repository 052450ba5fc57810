-- +goose Up
-- A customer's message for an open chat is stored by the API in one call:
-- the webhook's transaction was seven round trips (begin, duplicate check,
-- chat lock, deferred wake-up, message, chat update, commit), and at
-- hundreds of messages a second their CPU, in the API and in PostgreSQL, set
-- the time from acknowledgement to the agent's view. Same rules as before,
-- in the same order: a message stored before (in any chat) is a duplicate;
-- the conversation's open chat that takes messages from Postgres is locked
-- first, so a close that committed before makes this a no-op (the message
-- opens the next chat) and a close on the completion timeout waits for this
-- commit and sees the customer waiting; the message, its attachments, the
-- chat's update and the notices its workflow needs commit together, and the
-- event wake-up is left to the caller (see 00009).
-- +goose StatementBegin
CREATE FUNCTION omnichat_store_inbound(
    p_channel uuid, p_conversation text, p_message uuid, p_external_id text, p_kind text,
    p_text text, p_sender_name text, p_provider_time timestamptz, p_attachments jsonb,
    OUT handled boolean, OUT duplicate boolean, OUT chat uuid, OUT notices integer, OUT stored boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    stamp timestamptz;
BEGIN
    handled := false; duplicate := false; notices := 0; stored := false;
    SELECT m.chat_id INTO chat FROM messages m
    WHERE m.channel_id = p_channel AND m.direction = 'inbound' AND m.external_id = p_external_id LIMIT 1;
    IF FOUND THEN
        handled := true; duplicate := true;
        RETURN;
    END IF;
    SELECT ch.id, ch.workflow_id, ch.status, ch.customer_waiting INTO c FROM chats ch
    WHERE ch.channel_id = p_channel AND ch.conversation_id = p_conversation
      AND ch.status <> 'closed' AND ch.direct_ingest
    LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN; -- no open chat here: the chat's workflow opens one
    END IF;
    PERFORM set_config('omnichat.defer_notify', 'on', true);
    -- The message's time is taken once the chat row is locked: now() is the
    -- call's start, before any wait for the lock, and the agent's reading
    -- committed during that wait would hide the message from the unread count.
    stamp := clock_timestamp();
    INSERT INTO messages (id, chat_id, channel_id, direction, kind, external_id, text, sender_name, status, provider_time, created_at)
    VALUES (p_message, c.id, p_channel, 'inbound', p_kind, p_external_id, p_text, p_sender_name, 'received', p_provider_time, stamp)
    ON CONFLICT (channel_id, direction, external_id) DO NOTHING;
    IF NOT FOUND THEN
        -- The same message committed meanwhile; nothing was written.
        handled := true; duplicate := true; chat := c.id;
        RETURN;
    END IF;
    INSERT INTO attachments (id, channel_id, message_id, kind, remote_id, remote_url, name, media_type, size, status, created_at)
    SELECT (a->>'id')::uuid, p_channel, p_message, a->>'kind', a->>'remote_id', a->>'url', a->>'name',
           a->>'media_type', (a->>'size')::bigint, 'pending', stamp
    FROM jsonb_array_elements(p_attachments) WITH ORDINALITY AS t(a, n) ORDER BY n;
    UPDATE chats SET last_message_at = stamp, customer_waiting = true WHERE id = c.id;
    INSERT INTO chat_notices (chat_id, workflow_id, kind, ref, next_at, created_at)
    SELECT c.id, c.workflow_id, 'attachment', a->>'id', stamp, stamp
    FROM jsonb_array_elements(p_attachments) WITH ORDINALITY AS t(a, n) ORDER BY n;
    notices := jsonb_array_length(p_attachments);
    IF c.status = 'in_progress' AND NOT c.customer_waiting THEN
        INSERT INTO chat_notices (chat_id, workflow_id, kind, next_at, created_at)
        VALUES (c.id, c.workflow_id, 'answered', stamp, stamp);
        notices := notices + 1;
    END IF;
    handled := true; chat := c.id; stored := true;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION omnichat_store_inbound(uuid, text, uuid, text, text, text, text, timestamptz, jsonb);
