-- +goose Up
-- Chat actions: what agents of a queue may run on a chat. Exactly one of a
-- workflow (type + task queue of any worker), a no-code definition, or a
-- built-in action.
CREATE TABLE actions (
    id            uuid PRIMARY KEY,
    caption       text NOT NULL,
    queue_id      uuid REFERENCES queues (id) ON DELETE CASCADE,
    enabled       boolean NOT NULL DEFAULT true,
    kind          text NOT NULL CHECK (kind IN ('workflow', 'nocode', 'builtin')),
    workflow_type text NOT NULL DEFAULT '',
    task_queue    text NOT NULL DEFAULT '',
    -- definition is the no-code definition; Authorization header values in it
    -- are secrets, never answered by the API.
    definition    jsonb,
    builtin       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A caption is unique within its queue (queue-less actions form one group).
CREATE UNIQUE INDEX actions_caption ON actions (coalesce(queue_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(caption));

-- One row per run of an action on a chat. The action's kind, workflow and
-- definition are copied at run time, so editing or deleting the action never
-- changes a run already going, and past runs outlive their action.
CREATE TABLE action_runs (
    id              uuid PRIMARY KEY,
    action_id       uuid REFERENCES actions (id) ON DELETE SET NULL,
    caption         text NOT NULL,
    kind            text NOT NULL,
    workflow_type   text NOT NULL,
    task_queue      text NOT NULL,
    definition      jsonb,
    chat_id         uuid NOT NULL REFERENCES chats (id),
    agent_id        uuid NOT NULL REFERENCES users (id),
    idempotency_key text NOT NULL,
    status          text NOT NULL CHECK (status IN ('started', 'completed', 'failed', 'timed_out')),
    result          text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (chat_id, agent_id, idempotency_key)
);
CREATE INDEX action_runs_chat ON action_runs (chat_id, created_at);

-- Cases: numbered for people (CS-000123), made from a chat.
CREATE SEQUENCE case_numbers;
CREATE TABLE cases (
    id          uuid PRIMARY KEY,
    number      text NOT NULL UNIQUE,
    -- source_key makes creation idempotent: the run (and step) that made it.
    source_key  text NOT NULL UNIQUE,
    run_id      uuid REFERENCES action_runs (id),
    subject     text NOT NULL,
    description text NOT NULL,
    status      text NOT NULL CHECK (status IN ('new', 'in_progress', 'resolved', 'closed')),
    contact_id  uuid NOT NULL REFERENCES contacts (id),
    chat_id     uuid NOT NULL REFERENCES chats (id),
    queue_id    uuid NOT NULL REFERENCES queues (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_contact ON cases (contact_id, created_at);
CREATE INDEX cases_chat ON cases (chat_id, created_at);

-- Fields a no-code action sets on a contact.
ALTER TABLE contacts ADD COLUMN fields jsonb NOT NULL DEFAULT '{}';

-- The built-in "Create case" action, for every queue, as in Creatio.
INSERT INTO actions (id, caption, kind, builtin)
VALUES ('6c6d6e00-0000-4000-8000-000000000001', 'Create case', 'builtin', 'CreateCaseFromChat');

-- +goose Down
ALTER TABLE contacts DROP COLUMN fields;
DROP TABLE cases;
DROP SEQUENCE case_numbers;
DROP TABLE action_runs;
DROP TABLE actions;
