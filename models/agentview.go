package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
)

// ChatRow is a chat as an agent lists it.
type ChatRow struct {
	Chat
	ContactName      string
	ContactPhotoID   *uuid.UUID
	ContactBlockedAt *time.Time
	ChannelName      string
	Provider         string
	QueueName        string
	RoutingRule      string
	UnreadMessages   int
	LastMessageText  *string
	OfferExpiresAt   *time.Time
}

// ChatFilter selects an agent's chats.
type ChatFilter struct {
	// Admin: the agent holds CanManageChats and also sees the bot-owned chats of every queue.
	Admin  bool
	Status string
	// Before is a cursor: only chats with a smaller seq.
	Before int64
	Limit  int
}

// canTakeNew reports whether the agent is Active and below SimultaneousChats,
// the condition for seeing unassigned chats of all_agents queues.
func (s *Store) canTakeNew(ctx context.Context, agentID uuid.UUID) (bool, error) {
	def, _ := SettingDefByCode(SettingSimultaneousChats)
	// One round trip: the panel lists on every change it hears of.
	var take []bool
	err := s.db.WithContext(ctx).Raw(`SELECT u.status = ? AND
		u.open_chats < COALESCE((SELECT value::int FROM settings WHERE code = ?), CAST(? AS int))
		FROM users u WHERE u.id = ?`, domain.AgentActive, SettingSimultaneousChats, def.Default, agentID).Scan(&take).Error
	if err != nil {
		return false, err
	}
	if len(take) == 0 {
		return false, fmt.Errorf("agent: %w", domain.ErrNotFound)
	}
	return take[0], nil
}

// botChatsSQL: chats a bot app owns are listed, read-only, to the agents of
// their queue and to admins.
const botChatsSQL = `(c.status = 'bot' AND (@admin OR c.queue_id IN (` + agentQueuesSQL + `)))`

// unreadSQL counts chat c's inbound messages the agent has not read; the
// partial index messages_chat_inbound answers it from the index alone.
const unreadSQL = `SELECT count(*) FROM messages m WHERE m.chat_id = c.id AND m.direction = 'inbound'
	   AND m.created_at > COALESCE(c.agent_read_at, '-infinity'::timestamptz)`

const chatRowSelect = `SELECT c.*, ct.name AS contact_name, ct.blocked_at AS contact_blocked_at,
	(SELECT a.id FROM attachments a WHERE a.id = ct.photo_attachment_id AND a.status = 'stored') AS contact_photo_id, ch.name AS channel_name, ch.provider, q.name AS queue_name, q.routing_rule,
	(` + unreadSQL + `) AS unread_messages,
	(SELECT m.text FROM messages m WHERE m.chat_id = c.id AND m.direction <> 'system' ORDER BY m.seq DESC LIMIT 1) AS last_message_text,
	CASE WHEN c.status = 'offered' THEN c.offered_at + make_interval(secs => 60 * COALESCE(
	   (SELECT value::float8 FROM settings WHERE code = 'OmniChatOperatorAcceptChatTimeout'), 5)) END AS offer_expires_at
	FROM chats c JOIN contacts ct ON ct.id = c.contact_id JOIN channels ch ON ch.id = c.channel_id JOIN queues q ON q.id = c.queue_id`

// ListAgentChats lists the chats an agent sees, newest first.
func (s *Store) ListAgentChats(ctx context.Context, agentID uuid.UUID, f ChatFilter) ([]ChatRow, error) {
	take, err := s.canTakeNew(ctx, agentID)
	if err != nil {
		return nil, err
	}
	args := map[string]any{"agent": agentID, "take": take, "admin": f.Admin, "status": f.Status, "before": f.Before, "limit": f.Limit}
	var rows []ChatRow
	err = s.db.WithContext(ctx).Raw(`WITH page AS (`+visiblePageSQL+`)
		`+chatRowSelect+` WHERE c.seq IN (SELECT seq FROM page) ORDER BY c.seq DESC LIMIT @limit`, args).Scan(&rows).Error
	return rows, err
}

// visiblePageSQL selects the seqs of one page of an agent's list: their own
// chats, the waiting chats of their all_agents queues while they can take one
// (@take), and the bot-owned chats of their queues (of all queues for an
// admin). It is that condition split into its three branches, each of
// which an index answers newest first (chats_agent_seq or
// chats_agent_status_seq, chats_listed_queue, chats_bot): as one OR over
// joined tables PostgreSQL could only walk every chat by seq and filter,
// tens of milliseconds with 100,000 chats. Each branch stops at a page; the
// union's newest page is the answer.
const visiblePageSQL = `SELECT seq FROM (
	(SELECT c.seq FROM chats c WHERE c.agent_id = @agent
		AND (@status = '' OR c.status = @status) AND (@before = 0 OR c.seq < @before)
		ORDER BY c.seq DESC LIMIT @limit)
	UNION
	(SELECT c.seq FROM chats c JOIN queues q ON q.id = c.queue_id
		WHERE @take AND @status IN ('', 'waiting') AND c.status = 'waiting' AND q.routing_rule = 'all_agents'
		AND c.queue_id IN (` + agentQueuesSQL + `) AND (@before = 0 OR c.seq < @before)
		ORDER BY c.seq DESC LIMIT @limit)
	UNION
	(SELECT c.seq FROM chats c WHERE @status IN ('', 'bot') AND c.status = 'bot'
		AND (@admin OR c.queue_id IN (` + agentQueuesSQL + `)) AND (@before = 0 OR c.seq < @before)
		ORDER BY c.seq DESC LIMIT @limit)
	) v ORDER BY seq DESC LIMIT @limit`

// AgentChat loads a chat for an agent: found only when the chat is theirs or
// belongs to a queue they serve (or, for an admin, is bot-owned); otherwise
// domain.ErrNotFound, so IDs do not leak.
func (s *Store) AgentChat(ctx context.Context, agentID, chatID uuid.UUID, admin bool) (*ChatRow, error) {
	var row ChatRow
	err := s.db.WithContext(ctx).Raw(chatRowSelect+` WHERE c.id = @chat AND `+agentSeesSQL,
		map[string]any{"agent": agentID, "chat": chatID, "admin": admin}).Scan(&row).Error
	if err != nil {
		return nil, err
	}
	if row.ID == uuid.Nil {
		return nil, fmt.Errorf("chat: %w", domain.ErrNotFound)
	}
	return &row, nil
}

// agentSeesSQL: chat c is the agent's (@agent), or of a queue they serve,
// or (for an admin, @admin) bot-owned.
const agentSeesSQL = `(c.agent_id = @agent OR c.queue_id IN (` + agentQueuesSQL + `) OR ` + botChatsSQL + `)`

// AgentSeesChat is AgentChat's access check alone, for reads that need the
// chat's ID and nothing of its row (its messages, marking it read): the row's
// unread count and last message grow with the conversation.
func (s *Store) AgentSeesChat(ctx context.Context, agentID, chatID uuid.UUID, admin bool) error {
	var ok bool
	err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM chats c WHERE c.id = @chat AND `+agentSeesSQL+`)`,
		map[string]any{"agent": agentID, "chat": chatID, "admin": admin}).Scan(&ok).Error
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("chat: %w", domain.ErrNotFound)
	}
	return nil
}

// MessageWithAttachments is a message and its attachments (without their content).
type MessageWithAttachments struct {
	Message
	Attachments []Attachment
}

// AgentChatMessages pages a chat's messages oldest first after a seq cursor,
// each with its attachments, for an agent who may see the chat (AgentSeesChat's
// condition): one query, the access check its one-time filter. Only an empty
// page needs a second look, to tell a chat with nothing new from one the agent
// may not see (ErrNotFound).
func (s *Store) AgentChatMessages(ctx context.Context, agentID, chatID uuid.UUID, admin bool, after int64, limit int) ([]MessageWithAttachments, error) {
	var rows []struct {
		Message
		AttachmentsJSON []byte
	}
	// The attachments' keys are Attachment's field names, so they decode
	// straight into it; its content is left out.
	err := s.db.WithContext(ctx).Raw(`SELECT m.*, (SELECT json_agg(json_build_object('ID', a.id, 'ChannelID', a.channel_id,
			'MessageID', a.message_id, 'Kind', a.kind, 'RemoteID', a.remote_id, 'RemoteURL', a.remote_url, 'Name', a.name,
			'MediaType', a.media_type, 'Size', a.size, 'Status', a.status, 'FailReason', a.fail_reason, 'CreatedAt', a.created_at)
			ORDER BY a.created_at, a.seq, a.id) FROM attachments a WHERE a.message_id = m.id) AS attachments_json
		FROM messages m
		WHERE m.chat_id = @chat AND m.seq > @after AND EXISTS (SELECT 1 FROM chats c WHERE c.id = @chat AND `+agentSeesSQL+`)
		ORDER BY m.seq LIMIT @limit`,
		map[string]any{"agent": agentID, "chat": chatID, "admin": admin, "after": after, "limit": limit}).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("chat messages: %w", err)
	}
	if len(rows) == 0 {
		return []MessageWithAttachments{}, s.AgentSeesChat(ctx, agentID, chatID, admin)
	}
	out := make([]MessageWithAttachments, len(rows))
	for i, r := range rows {
		out[i] = MessageWithAttachments{Message: r.Message, Attachments: []Attachment{}}
		if len(r.AttachmentsJSON) == 0 {
			continue
		}
		if err := json.Unmarshal(r.AttachmentsJSON, &out[i].Attachments); err != nil {
			return nil, fmt.Errorf("attachments of message %s: %w", r.ID, err)
		}
	}
	return out, nil
}

// MarkRead marks every message of a chat as read by its agent, when agentID
// is that agent; for anybody else it changes nothing. The condition is in
// the UPDATE, so a transfer at the same moment cannot slip past it.
func (s *Store) MarkRead(ctx context.Context, chatID, agentID uuid.UUID) error {
	return s.db.WithContext(ctx).Model(&Chat{}).Where("id = ? AND agent_id = ?", chatID, agentID).Update("agent_read_at", time.Now().UTC()).Error
}

// UnreadCounts counts the open chats an agent sees that have unread inbound
// messages, and those messages.
func (s *Store) UnreadCounts(ctx context.Context, agentID uuid.UUID) (chats, messages int, err error) {
	take, err := s.canTakeNew(ctx, agentID)
	if err != nil {
		return 0, 0, err
	}
	var r struct{ Chats, Messages int }
	// The open chats of the first two branches of visiblePageSQL, as a union so
	// that each is an index lookup (chats_agent_status_seq, chats_listed_queue);
	// only the unread count is computed for them, not the whole list row.
	err = s.db.WithContext(ctx).Raw(`SELECT count(*) FILTER (WHERE n > 0) AS chats, COALESCE(sum(n), 0) AS messages
		FROM (SELECT (`+unreadSQL+`) AS n FROM chats c WHERE c.id IN (
			SELECT c.id FROM chats c WHERE c.agent_id = @agent AND c.status IN ('bot', 'waiting', 'offered', 'in_progress')
			UNION
			SELECT c.id FROM chats c JOIN queues q ON q.id = c.queue_id WHERE @take AND c.status = 'waiting'
				AND q.routing_rule = 'all_agents' AND c.queue_id IN (`+agentQueuesSQL+`))) v`,
		map[string]any{"agent": agentID, "take": take}).Scan(&r).Error
	return r.Chats, r.Messages, err
}
