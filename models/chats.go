package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// routingLockKey serialises every change of agent capacity (offers, accepts,
// expiries, transfers), so routing never over-assigns an agent.
const routingLockKey = 0x6f6d6e69 // "omni"

// ChatInfo is what the chat workflow needs to know about its chat.
type ChatInfo struct {
	ChatID            uuid.UUID
	ContactID         uuid.UUID
	QueueID           uuid.UUID
	RoutingRule       string
	CompletionTimeout time.Duration
	Status            string
	AgentID           *uuid.UUID
}

// IngestInput is one inbound message for a chat.
type IngestInput struct {
	ChatID            uuid.UUID
	OpenChat          bool // the chat row may not exist yet
	WorkflowID        string
	ChannelID         uuid.UUID
	ConversationID    string
	SenderID          string
	SenderName        string
	ExternalMessageID string
	Text              string
	Kind              string
	SentAt            time.Time
	// Edited replaces the text of the message stored under ExternalMessageID.
	Edited bool
	// Bot opens the chat as owned by a bot app: stored, not routed.
	Bot         bool
	Attachments []AttachmentInput
}

// AttachmentInput describes a file of an inbound message, fetched later.
type AttachmentInput struct {
	Kind, RemoteID, URL, Name, MediaType string
	Size                                 int64
}

// IngestResult tells whether the message was new.
type IngestResult struct {
	// Duplicate: the message was stored before, in another chat; nothing was written.
	Duplicate bool
	// Stored: this call wrote the message row (false on an idempotent retry).
	Stored bool
	// Edited: the message existed and its text was replaced.
	Edited bool
	// NewContact: the chat's contact was created by this message.
	NewContact bool
	// Attachments still to fetch.
	Attachments []uuid.UUID
	Chat        ChatInfo
}

// Ingest stores an inbound message once per (channel, external ID), creating
// the contact and the chat when the chat is new, in one transaction.
func (s *Store) Ingest(ctx context.Context, in IngestInput) (IngestResult, error) {
	var res IngestResult
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		if in.Edited {
			upd := tx.Model(&Message{}).Where("channel_id = ? AND direction = ? AND external_id = ?", in.ChannelID, Inbound, in.ExternalMessageID).
				Updates(map[string]any{"text": in.Text, "edited_at": now})
			if upd.Error != nil {
				return fmt.Errorf("edit message: %w", upd.Error)
			}
			if upd.RowsAffected > 0 {
				res.Edited = true
				return nil
			}
			// The original never reached us: store the edited text as the message.
		}
		if in.OpenChat {
			// A redelivered first message must not open an empty chat: check first.
			existing, err := inboundChat(tx, in.ChannelID, in.ExternalMessageID)
			if err != nil || existing != uuid.Nil {
				return ingestSeen(tx, in, existing, &res, err)
			}
			if res.NewContact, err = openChat(tx, in, now); err != nil {
				return err
			}
		}
		kind := in.Kind
		if kind == "" {
			kind = "text"
		}
		msg := Message{ID: uuid.New(), ChatID: in.ChatID, ChannelID: in.ChannelID, Direction: Inbound, Kind: kind,
			ExternalID: &in.ExternalMessageID, Text: in.Text, SenderName: in.SenderName, Status: MsgReceived, CreatedAt: now}
		if in.Edited {
			msg.EditedAt = &now
		}
		if !in.SentAt.IsZero() {
			t := in.SentAt.UTC()
			msg.ProviderTime = &t
		}
		ins := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "channel_id"}, {Name: "direction"}, {Name: "external_id"}}, DoNothing: true}).Create(&msg)
		if ins.Error != nil {
			return fmt.Errorf("insert message: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			existing, err := inboundChat(tx, in.ChannelID, in.ExternalMessageID)
			return ingestSeen(tx, in, existing, &res, err)
		}
		for _, a := range in.Attachments {
			row := Attachment{ID: uuid.New(), ChannelID: in.ChannelID, MessageID: &msg.ID, Kind: a.Kind, RemoteID: a.RemoteID,
				RemoteURL: a.URL, Name: a.Name, MediaType: a.MediaType, Size: a.Size, Status: AttachmentPending, CreatedAt: now}
			if err := tx.Create(&row).Error; err != nil {
				return fmt.Errorf("insert attachment: %w", err)
			}
			res.Attachments = append(res.Attachments, row.ID)
		}
		if err := tx.Model(&Chat{}).Where("id = ?", in.ChatID).Update("last_message_at", now).Error; err != nil {
			return err
		}
		res.Stored = true
		if in.OpenChat {
			info, err := chatInfo(tx, in.ChatID)
			res.Chat = info
			return err
		}
		res.Chat.ChatID = in.ChatID
		return nil
	})
	return res, err
}

// inboundChat returns the chat holding an inbound message, uuid.Nil when none does.
func inboundChat(tx *gorm.DB, channelID uuid.UUID, externalID string) (uuid.UUID, error) {
	var ids []uuid.UUID
	err := tx.Model(&Message{}).Where("channel_id = ? AND direction = ? AND external_id = ?", channelID, Inbound, externalID).
		Limit(1).Pluck("chat_id", &ids).Error
	if err != nil || len(ids) == 0 {
		return uuid.Nil, err
	}
	return ids[0], nil
}

// ingestSeen answers for a message that is already stored: a duplicate when it
// is in another chat, or the chat as it is when an earlier attempt of this very
// call committed.
func ingestSeen(tx *gorm.DB, in IngestInput, existing uuid.UUID, res *IngestResult, err error) error {
	if err != nil {
		return err
	}
	if existing != in.ChatID {
		res.Duplicate = true
		return nil
	}
	// An earlier attempt of this call committed: report what it did.
	if err := tx.Raw(`SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_id
		WHERE m.channel_id = ? AND m.direction = 'inbound' AND m.external_id = ? AND a.status = 'pending' ORDER BY a.created_at`,
		in.ChannelID, in.ExternalMessageID).Scan(&res.Attachments).Error; err != nil {
		return err
	}
	info, err := chatInfo(tx, in.ChatID)
	res.Chat = info
	return err
}

// openChat creates the contact (or reuses it) and the chat row; it reports
// whether the contact is new.
func openChat(tx *gorm.DB, in IngestInput, now time.Time) (bool, error) {
	var ch Channel
	if err := tx.First(&ch, "id = ?", in.ChannelID).Error; err != nil {
		return false, notFound(err, "channel")
	}
	var known bool
	if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM contacts WHERE channel_id = ? AND external_id = ?)`, in.ChannelID, in.SenderID).Scan(&known).Error; err != nil {
		return false, err
	}
	// A provider that sends no name (Messenger) gets a fallback until the profile
	// arrives; a known contact keeps its name unless the message brings one.
	name := in.SenderName
	if name == "" {
		name = "Customer " + suffix(in.SenderID, 4)
	}
	contact := Contact{ID: uuid.New(), ChannelID: in.ChannelID, ExternalID: in.SenderID, Name: name}
	if err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "channel_id"}, {Name: "external_id"}},
		DoUpdates: clause.Assignments(map[string]any{"name": gorm.Expr("CASE WHEN ? <> '' THEN ? ELSE contacts.name END", in.SenderName, in.SenderName)}),
	}).Create(&contact).Error; err != nil {
		return false, fmt.Errorf("upsert contact: %w", err)
	}
	// A fresh struct: GORM would add the upsert's unused primary key to the condition.
	var stored Contact
	if err := tx.Where("channel_id = ? AND external_id = ?", in.ChannelID, in.SenderID).Take(&stored).Error; err != nil {
		return false, fmt.Errorf("load contact: %w", err)
	}
	status := ChatWaiting
	if in.Bot {
		status = ChatBot
	}
	chat := Chat{ID: in.ChatID, ChannelID: in.ChannelID, QueueID: ch.QueueID, ContactID: stored.ID,
		ConversationID: in.ConversationID, WorkflowID: in.WorkflowID, Status: status, WaitingSince: now, CreatedAt: now}
	if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true}).Create(&chat).Error; err != nil {
		return false, fmt.Errorf("create chat: %w", err)
	}
	return !known, nil
}

func chatInfo(tx *gorm.DB, chatID uuid.UUID) (ChatInfo, error) {
	var row struct {
		Chat
		RoutingRule              string
		CompletionTimeoutMinutes *float64
	}
	err := tx.Raw(`SELECT c.*, q.routing_rule, q.completion_timeout_minutes FROM chats c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?`, chatID).
		Scan(&row).Error
	if err != nil {
		return ChatInfo{}, err
	}
	if row.ID == uuid.Nil {
		return ChatInfo{}, fmt.Errorf("chat %s: %w", chatID, ErrNotFound)
	}
	q := Queue{CompletionTimeoutMinutes: row.CompletionTimeoutMinutes}
	return ChatInfo{ChatID: row.ID, ContactID: row.ContactID, QueueID: row.QueueID, RoutingRule: row.RoutingRule,
		CompletionTimeout: q.CompletionTimeout(), Status: row.Status, AgentID: row.AgentID}, nil
}

// withRoutingLock runs fn in a transaction holding the routing lock.
func (s *Store) withRoutingLock(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, routingLockKey).Error; err != nil {
			return fmt.Errorf("routing lock: %w", err)
		}
		return fn(tx)
	})
}

func agentLoad(tx *gorm.DB, agentID uuid.UUID) (int, error) {
	var n int64
	err := tx.Model(&Chat{}).Where("agent_id = ? AND status IN ?", agentID, []string{ChatOffered, ChatInProgress}).Count(&n).Error
	return int(n), err
}

// canTakeChat checks, under the routing lock, that an agent is Active and
// below SimultaneousChats.
func canTakeChat(tx *gorm.DB, agentID uuid.UUID) error {
	var u User
	if err := tx.First(&u, "id = ?", agentID).Error; err != nil {
		return notFound(err, "agent")
	}
	if u.Status != AgentActive {
		return fmt.Errorf("agent is not active: %w", ErrConflict)
	}
	rs, err := getRoutingSettings(tx.Statement.Context, &Store{db: tx})
	if err != nil {
		return err
	}
	load, err := agentLoad(tx, agentID)
	if err != nil {
		return err
	}
	if load >= rs.SimultaneousChats {
		return fmt.Errorf("agent already has %d chats (SimultaneousChats %d): %w", load, rs.SimultaneousChats, ErrConflict)
	}
	return nil
}

// AcceptOutcome says whether an accept took the chat and, when it did not
// because another agent holds it, who does.
type AcceptOutcome struct {
	Accepted bool
	Status   string
	AgentID  *uuid.UUID
}

// Accept makes agentID the chat's agent: the chat must be offered to them, or
// waiting in an all_agents queue they serve while they are Active and below
// SimultaneousChats. Accepting a chat one already has is a no-op (so a retry
// after a lost answer succeeds). A chat another agent holds is reported, not
// an error, so the caller can learn the truth.
func (s *Store) Accept(ctx context.Context, chatID, agentID uuid.UUID) (AcceptOutcome, error) {
	var out AcceptOutcome
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		info, err := chatInfo(tx, chatID)
		if err != nil {
			return err
		}
		out.Status, out.AgentID = info.Status, info.AgentID
		switch {
		case info.Status == ChatInProgress && info.AgentID != nil && *info.AgentID == agentID:
			out.Accepted = true
			return nil
		case info.Status == ChatInProgress:
			return nil
		case info.Status == ChatOffered && info.AgentID != nil && *info.AgentID == agentID:
		case info.Status == ChatWaiting && info.RoutingRule == RuleAllAgents:
			if err := canTakeChat(tx, agentID); err != nil {
				return err
			}
		default:
			return fmt.Errorf("chat is %s and cannot be accepted by this agent: %w", info.Status, ErrConflict)
		}
		now := time.Now().UTC()
		if err := tx.Model(&Chat{}).Where("id = ?", chatID).
			Updates(map[string]any{"status": ChatInProgress, "agent_id": agentID, "accepted_at": now}).Error; err != nil {
			return err
		}
		out = AcceptOutcome{Accepted: true, Status: ChatInProgress, AgentID: &agentID}
		return tx.Model(&User{}).Where("id = ?", agentID).Update("last_accepted_at", now).Error
	})
	return out, err
}

// ExpireOffer takes back an offer the agent did not accept in time and makes
// the agent Inactive. The chat keeps its place among the waiting chats.
// It reports false when the offer was no longer pending.
func (s *Store) ExpireOffer(ctx context.Context, chatID, agentID uuid.UUID) (bool, error) {
	expired := false
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Chat{}).Where("id = ? AND status = ? AND agent_id = ?", chatID, ChatOffered, agentID).
			Updates(map[string]any{"status": ChatWaiting, "agent_id": nil, "offered_at": nil})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		expired = true
		return tx.Model(&User{}).Where("id = ?", agentID).Updates(map[string]any{"status": AgentInactive, "updated_at": time.Now().UTC()}).Error
	})
	return expired, err
}

// CloseChat closes a chat with a reason; closing a closed chat is a no-op.
func (s *Store) CloseChat(ctx context.Context, chatID uuid.UUID, reason string) error {
	return s.db.WithContext(ctx).Model(&Chat{}).Where("id = ? AND status <> ?", chatID, ChatClosed).
		Updates(map[string]any{"status": ChatClosed, "closed_at": time.Now().UTC(), "close_reason": reason}).Error
}

// TransferToQueue moves a chat to another queue, where it waits to be routed afresh.
func (s *Store) TransferToQueue(ctx context.Context, chatID, queueID uuid.UUID) (ChatInfo, error) {
	var info ChatInfo
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		var q Queue
		if err := tx.First(&q, "id = ?", queueID).Error; err != nil {
			return notFound(err, "queue")
		}
		if err := tx.Model(&Chat{}).Where("id = ? AND status <> ?", chatID, ChatClosed).
			Updates(map[string]any{"queue_id": queueID, "status": ChatWaiting, "agent_id": nil, "offered_at": nil,
				"accepted_at": nil, "waiting_since": time.Now().UTC()}).Error; err != nil {
			return err
		}
		var err error
		info, err = chatInfo(tx, chatID)
		return err
	})
	return info, err
}

// TransferToAgent hands a chat to another agent of its queue, who must be
// Active and below SimultaneousChats.
func (s *Store) TransferToAgent(ctx context.Context, chatID, agentID uuid.UUID) error {
	return s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		info, err := chatInfo(tx, chatID)
		if err != nil {
			return err
		}
		var serves bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM (`+agentQueuesSQL+`) q WHERE q.queue_id = @queue)`,
			map[string]any{"agent": agentID, "queue": info.QueueID}).Scan(&serves).Error; err != nil {
			return err
		}
		if !serves {
			return fmt.Errorf("target agent does not serve this chat's queue: %w", ErrInvalid)
		}
		if err := canTakeChat(tx, agentID); err != nil {
			return fmt.Errorf("target %w", err)
		}
		return tx.Model(&Chat{}).Where("id = ?", chatID).
			Updates(map[string]any{"agent_id": agentID, "status": ChatInProgress, "accepted_at": time.Now().UTC(), "agent_read_at": nil}).Error
	})
}

// RoutingSnapshot is what the dispatcher decides on.
type RoutingSnapshot struct {
	Limit   int
	Accept  time.Duration
	Waiting []WaitingChat
	Agents  []AgentLoad
}

// WaitingChat is a chat of an available_agent queue waiting for an offer.
type WaitingChat struct {
	ID         uuid.UUID
	QueueID    uuid.UUID
	WorkflowID string
}

// AgentLoad is an Active agent with their load and queues.
type AgentLoad struct {
	ID             uuid.UUID
	Load           int
	LastAcceptedAt *time.Time
	QueueIDs       []uuid.UUID
}

// Offer is one chat offered to one agent.
type Offer struct {
	ChatID     uuid.UUID
	AgentID    uuid.UUID
	WorkflowID string
}

// AssignWaiting, under the routing lock, loads the oldest waiting chats of
// available_agent queues and the Active agents, lets decide pick offers, and
// records them. The offers are returned for the caller to deliver.
func (s *Store) AssignWaiting(ctx context.Context, maxChats int, decide func(RoutingSnapshot) []Offer) ([]Offer, RoutingSnapshot, error) {
	var offers []Offer
	var snap RoutingSnapshot
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		rs, err := getRoutingSettings(tx.Statement.Context, &Store{db: tx})
		if err != nil {
			return err
		}
		snap = RoutingSnapshot{Limit: rs.SimultaneousChats, Accept: rs.AcceptTimeout}
		if err := tx.Raw(`SELECT c.id, c.queue_id, c.workflow_id FROM chats c JOIN queues q ON q.id = c.queue_id
			WHERE c.status = ? AND q.routing_rule = ? ORDER BY c.waiting_since, c.seq LIMIT ?`,
			ChatWaiting, RuleAvailableAgent, maxChats).Scan(&snap.Waiting).Error; err != nil {
			return fmt.Errorf("waiting chats: %w", err)
		}
		if len(snap.Waiting) == 0 {
			return nil
		}
		var rows []struct {
			ID             uuid.UUID
			Load           int
			LastAcceptedAt *time.Time
			QueueID        uuid.UUID
		}
		if err := tx.Raw(`
			WITH members AS (
				SELECT queue_id, user_id FROM queue_users
				UNION SELECT qr.queue_id, m.user_id FROM queue_roles qr JOIN role_members m ON m.role_id = qr.role_id
			), loads AS (
				SELECT agent_id, count(*) AS load FROM chats WHERE status IN ('offered', 'in_progress') AND agent_id IS NOT NULL GROUP BY agent_id
			)
			SELECT u.id, COALESCE(l.load, 0) AS load, u.last_accepted_at, m.queue_id
			FROM users u JOIN members m ON m.user_id = u.id LEFT JOIN loads l ON l.agent_id = u.id
			WHERE u.status = 'active' AND COALESCE(l.load, 0) < ?
			ORDER BY u.id, m.queue_id`, snap.Limit).Scan(&rows).Error; err != nil {
			return fmt.Errorf("agents: %w", err)
		}
		for _, r := range rows {
			if n := len(snap.Agents); n > 0 && snap.Agents[n-1].ID == r.ID {
				snap.Agents[n-1].QueueIDs = append(snap.Agents[n-1].QueueIDs, r.QueueID)
				continue
			}
			snap.Agents = append(snap.Agents, AgentLoad{ID: r.ID, Load: r.Load, LastAcceptedAt: r.LastAcceptedAt, QueueIDs: []uuid.UUID{r.QueueID}})
		}
		now := time.Now().UTC()
		for _, o := range decide(snap) {
			res := tx.Model(&Chat{}).Where("id = ? AND status = ?", o.ChatID, ChatWaiting).
				Updates(map[string]any{"status": ChatOffered, "agent_id": o.AgentID, "offered_at": now})
			if res.Error != nil {
				return fmt.Errorf("record offer: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				offers = append(offers, o)
			}
		}
		return nil
	})
	return offers, snap, err
}

// SetAgentStatus sets an agent Active or Inactive.
func (s *Store) SetAgentStatus(ctx context.Context, agentID uuid.UUID, status string) error {
	return s.db.WithContext(ctx).Model(&User{}).Where("id = ?", agentID).
		Updates(map[string]any{"status": status, "updated_at": time.Now().UTC()}).Error
}

// RecordOutbound stores an agent's message once per (chat, idempotency key)
// and returns the stored row.
func (s *Store) RecordOutbound(ctx context.Context, m *Message) (*Message, error) {
	m.Direction = Outbound
	m.Status = MsgSending
	db := s.db.WithContext(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(m).Error; err != nil {
		return nil, fmt.Errorf("record outbound: %w", err)
	}
	var stored Message
	q := db.Where("id = ?", m.ID)
	if m.IdempotencyKey != nil {
		q = db.Where("id = ? OR (chat_id = ? AND idempotency_key = ?)", m.ID, m.ChatID, *m.IdempotencyKey)
	}
	if err := q.Take(&stored).Error; err != nil {
		return nil, fmt.Errorf("load outbound: %w", err)
	}
	return &stored, nil
}

// SetMessageStatus records a delivery outcome.
func (s *Store) SetMessageStatus(ctx context.Context, id uuid.UUID, status, externalID, reason string) error {
	cols := map[string]any{"status": status}
	if externalID != "" {
		cols["external_id"] = externalID
	}
	if reason != "" {
		cols["fail_reason"] = reason
	}
	return s.db.WithContext(ctx).Model(&Message{}).Where("id = ?", id).Updates(cols).Error
}

// GetMessage loads one message.
func (s *Store) GetMessage(ctx context.Context, id uuid.UUID) (*Message, error) {
	var m Message
	return &m, notFound(s.db.WithContext(ctx).First(&m, "id = ?", id).Error, "message")
}

// GetChat loads one chat.
func (s *Store) GetChat(ctx context.Context, id uuid.UUID) (*Chat, error) {
	var c Chat
	return &c, notFound(s.db.WithContext(ctx).First(&c, "id = ?", id).Error, "chat")
}

// GetContact loads one contact.
func (s *Store) GetContact(ctx context.Context, id uuid.UUID) (*Contact, error) {
	var c Contact
	return &c, notFound(s.db.WithContext(ctx).First(&c, "id = ?", id).Error, "contact")
}

func suffix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
