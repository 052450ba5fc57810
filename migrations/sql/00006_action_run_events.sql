-- +goose Up
-- action_run.changed: a run of a chat action started or reached its outcome.
-- It goes to the agent who ran it and to the chat's agent now (admins see
-- all), in the transaction that records the run, like every other event.
-- The system note an outcome posts into the chat is a message, so it comes
-- as message.created from the messages trigger.

-- +goose StatementBegin
CREATE FUNCTION omnichat_action_run_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    chat_agent uuid;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status AND OLD.result IS NOT DISTINCT FROM NEW.result
       AND OLD.error IS NOT DISTINCT FROM NEW.error THEN
        RETURN NULL;
    END IF;
    SELECT agent_id INTO chat_agent FROM chats WHERE id = NEW.chat_id;
    PERFORM omnichat_emit('action_run.changed', NEW.chat_id, ARRAY[NEW.agent_id, chat_agent], '{}',
        jsonb_build_object('chat_id', NEW.chat_id, 'run_id', NEW.id, 'action_id', NEW.action_id, 'caption', NEW.caption,
            'agent_id', NEW.agent_id, 'status', NEW.status, 'result', NEW.result, 'error', NEW.error,
            'finished_at', NEW.finished_at));
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER action_runs_events AFTER INSERT OR UPDATE OF status, result, error ON action_runs
    FOR EACH ROW EXECUTE FUNCTION omnichat_action_run_event();

-- +goose Down
DROP TRIGGER action_runs_events ON action_runs;
DROP FUNCTION omnichat_action_run_event();
