-- +goose NO TRANSACTION
-- +goose Up
-- Indexes for the agent panel's reads (models/agentview.go), found with
-- EXPLAIN ANALYZE on 100,000 chats and 1,000,000 messages (bench reads).
-- CONCURRENTLY: a plain CREATE INDEX holds off every write to the table while
-- it builds, which on a live deployment's messages table stops ingest for as
-- long as the build takes; a concurrent build lets writes go on. It cannot run
-- in a transaction, hence NO TRANSACTION. Should a build fail half way, it
-- leaves an INVALID index behind: DROP INDEX CONCURRENTLY it and migrate again
-- (IF NOT EXISTS would keep the invalid one).

-- An agent's own chats, newest first, all statuses or one.
CREATE INDEX CONCURRENTLY chats_agent_seq ON chats (agent_id, seq) WHERE agent_id IS NOT NULL;
CREATE INDEX CONCURRENTLY chats_agent_status_seq ON chats (agent_id, status, seq) WHERE agent_id IS NOT NULL;
-- The unassigned chats an agent's queues list: waiting (all_agents queues) and bot-owned.
CREATE INDEX CONCURRENTLY chats_listed_queue ON chats (queue_id, status, seq) WHERE status IN ('waiting', 'bot');
-- Bot-owned chats of every queue, for admins.
CREATE INDEX CONCURRENTLY chats_bot ON chats (seq) WHERE status = 'bot';
-- Unread counts: a chat's inbound messages after the agent's last read.
CREATE INDEX CONCURRENTLY messages_chat_inbound ON messages (chat_id, created_at) WHERE direction = 'inbound';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS messages_chat_inbound;
DROP INDEX CONCURRENTLY IF EXISTS chats_bot;
DROP INDEX CONCURRENTLY IF EXISTS chats_listed_queue;
DROP INDEX CONCURRENTLY IF EXISTS chats_agent_status_seq;
DROP INDEX CONCURRENTLY IF EXISTS chats_agent_seq;
