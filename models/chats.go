package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ChatInfo is what the chat workflow needs to know about its chat.
type ChatInfo struct {
	ChatID            uuid.UUID
	ContactID         uuid.UUID
	QueueID           uuid.UUID
	RoutingRule       string
	CompletionTimeout time.Duration
	Status            string
	AgentID           *uuid.UUID
	OfferedAt         *time.Time
	// DirectIngest: the conversation's gate is open (see OpenGate).
	DirectIngest bool
}

// IngestInput is one inbound message for a chat.
type IngestInput struct {
	ChatID     uuid.UUID
	OpenChat   bool // the chat row may not exist yet
	WorkflowID string
	ChannelID  uuid.UUID
	// Message is the customer's message. Edited replaces the text of the
	// message stored under its ExternalID; Standby opens the chat as owned by
	// a bot app: stored, not routed.
	Message domain.InboundMessage
	// OpenGate: when the chat opens, open the conversation's gate in the same
	// transaction if no message was signalled after this one (GateSeq).
	OpenGate bool
	// Claim, when set, offers a chat that opens waiting in an
	// available_agent queue to a free agent in the same transaction, deciding
	// as the dispatcher does (see claimOnOpen).
	Claim func(RoutingSnapshot) []Offer
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
	// AcceptTimeout: the agent's time to accept when Chat is offered.
	AcceptTimeout time.Duration
}

// Ingest stores an inbound message once per (channel, external ID), creating
// the contact and the chat when the chat is new, in one transaction.
func (s *Store) Ingest(ctx context.Context, in IngestInput) (IngestResult, error) {
	var res IngestResult
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := time.Now().UTC()
		if in.Message.Edited {
			upd := tx.Model(&Message{}).Where("channel_id = ? AND direction = ? AND external_id = ?", in.ChannelID, domain.Inbound, in.Message.ExternalID).
				Updates(map[string]any{"text": in.Message.Text, "edited_at": now})
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
			existing, err := inboundChat(tx, in.ChannelID, in.Message.ExternalID)
			if err != nil || existing != uuid.Nil {
				return ingestSeen(tx, in, existing, &res, err)
			}
			if res.NewContact, err = openChat(tx, in, now); err != nil {
				return err
			}
		}
		msg := Message{ID: uuid.New(), ChatID: in.ChatID, ChannelID: in.ChannelID, Direction: domain.Inbound, Kind: inboundKind(in.Message),
			ExternalID: &in.Message.ExternalID, Text: in.Message.Text, SenderName: in.Message.SenderName, Status: domain.MsgReceived,
			ProviderTime: providerTime(in.Message), CreatedAt: now}
		if in.Message.Edited {
			msg.EditedAt = &now
		}
		ins := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "channel_id"}, {Name: "direction"}, {Name: "external_id"}}, DoNothing: true}).Create(&msg)
		if ins.Error != nil {
			return fmt.Errorf("insert message: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			existing, err := inboundChat(tx, in.ChannelID, in.Message.ExternalID)
			return ingestSeen(tx, in, existing, &res, err)
		}
		for _, a := range in.Message.Attachments {
			row := Attachment{ID: uuid.New(), ChannelID: in.ChannelID, MessageID: &msg.ID, Kind: a.Kind, RemoteID: a.RemoteID,
				RemoteURL: a.URL, Name: a.Name, MediaType: a.MediaType, Size: a.Size, Status: domain.AttachmentPending, CreatedAt: now}
			if err := tx.Create(&row).Error; err != nil {
				return fmt.Errorf("insert attachment: %w", err)
			}
			res.Attachments = append(res.Attachments, row.ID)
		}
		if err := tx.Model(&Chat{}).Where("id = ?", in.ChatID).Updates(map[string]any{"last_message_at": now, "customer_waiting": true}).Error; err != nil {
			return err
		}
		res.Stored = true
		if in.OpenChat {
			return opened(tx, in, &res)
		}
		res.Chat.ChatID = in.ChatID
		return nil
	})
	return res, err
}

// opened completes a chat's opening: the conversation's gate and the offer
// to a free agent, when asked, in the opening's transaction.
func opened(tx *gorm.DB, in IngestInput, res *IngestResult) error {
	if in.OpenGate {
		if _, err := openGateIn(tx, in.ChatID, in.ChannelID, in.Message.ConversationID, in.Message.GateSeq); err != nil {
			return err
		}
	}
	info, err := chatInfo(tx, in.ChatID)
	if err != nil {
		return err
	}
	res.Chat = info
	if in.Claim == nil || info.Status != domain.ChatWaiting || info.RoutingRule != domain.RuleAvailableAgent {
		return nil
	}
	claim, err := claimOnOpen(tx, in.ChatID, info.QueueID, in.Claim)
	if err != nil || !claim.Offered {
		return err
	}
	res.Chat.Status, res.Chat.AgentID, res.Chat.OfferedAt = domain.ChatOffered, &claim.AgentID, &claim.OfferedAt
	res.AcceptTimeout = claim.AcceptTimeout
	return nil
}

// inboundKind is the kind an inbound message is stored with.
func inboundKind(m domain.InboundMessage) string {
	if m.Kind == "" {
		return "text"
	}
	return m.Kind
}

// providerTime is when the provider says the message was sent, if it says.
func providerTime(m domain.InboundMessage) *time.Time {
	if m.SentAt.IsZero() {
		return nil
	}
	t := m.SentAt.UTC()
	return &t
}

// inboundChat returns the chat holding an inbound message, uuid.Nil when none does.
func inboundChat(tx *gorm.DB, channelID uuid.UUID, externalID string) (uuid.UUID, error) {
	var ids []uuid.UUID
	err := tx.Model(&Message{}).Where("channel_id = ? AND direction = ? AND external_id = ?", channelID, domain.Inbound, externalID).
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
		WHERE m.channel_id = ? AND m.direction = 'inbound' AND m.external_id = ? AND a.status = 'pending' ORDER BY a.created_at, a.seq, a.id`,
		in.ChannelID, in.Message.ExternalID).Scan(&res.Attachments).Error; err != nil {
		return err
	}
	info, err := chatInfo(tx, in.ChatID)
	res.Chat = info
	if err != nil || info.Status != domain.ChatOffered || in.Claim == nil {
		return err
	}
	// The earlier attempt may have offered it: its agent's time is still needed.
	rs, err := (&Store{db: tx}).GetRoutingSettings(tx.Statement.Context)
	res.AcceptTimeout = rs.AcceptTimeout
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
	if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM contacts WHERE channel_id = ? AND external_id = ?)`, in.ChannelID, in.Message.SenderID).Scan(&known).Error; err != nil {
		return false, err
	}
	// A provider that sends no name (Messenger) gets a fallback until the profile
	// arrives; a known contact keeps its name unless the message brings one.
	name := in.Message.SenderName
	if name == "" {
		name = "Customer " + suffix(in.Message.SenderID, 4)
	}
	contact := Contact{ID: uuid.New(), ChannelID: in.ChannelID, ExternalID: in.Message.SenderID, Name: name}
	if err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "channel_id"}, {Name: "external_id"}},
		DoUpdates: clause.Assignments(map[string]any{"name": gorm.Expr("CASE WHEN ? <> '' THEN ? ELSE contacts.name END", in.Message.SenderName, in.Message.SenderName)}),
	}).Create(&contact).Error; err != nil {
		return false, fmt.Errorf("upsert contact: %w", err)
	}
	// A fresh struct: GORM would add the upsert's unused primary key to the condition.
	var stored Contact
	if err := tx.Where("channel_id = ? AND external_id = ?", in.ChannelID, in.Message.SenderID).Take(&stored).Error; err != nil {
		return false, fmt.Errorf("load contact: %w", err)
	}
	status := domain.ChatWaiting
	if in.Message.Standby {
		status = domain.ChatBot
	}
	chat := Chat{ID: in.ChatID, ChannelID: in.ChannelID, QueueID: ch.QueueID, ContactID: stored.ID,
		ConversationID: in.Message.ConversationID, WorkflowID: in.WorkflowID, Status: status, WaitingSince: now, CreatedAt: now,
	}
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
		return ChatInfo{}, fmt.Errorf("chat %s: %w", chatID, domain.ErrNotFound)
	}
	q := Queue{CompletionTimeoutMinutes: row.CompletionTimeoutMinutes}
	return ChatInfo{ChatID: row.ID, ContactID: row.ContactID, QueueID: row.QueueID, RoutingRule: row.RoutingRule,
		CompletionTimeout: q.CompletionTimeout(), Status: row.Status, AgentID: row.AgentID, OfferedAt: row.OfferedAt,
		DirectIngest: row.DirectIngest}, nil
}

// AcceptOutcome says whether an accept took the chat and, when it did not
// because another agent holds it, who does.
type AcceptOutcome struct {
	Accepted bool
	Status   string
	AgentID  *uuid.UUID
	// Took: this call made the agent the chat's agent (not a repeat), at
	// AcceptedAt; OfferedAt is when the chat had been offered to them (zero
	// for a chat taken without an offer).
	Took       bool
	AcceptedAt time.Time
	OfferedAt  time.Time
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
		case info.Status == domain.ChatInProgress && info.AgentID != nil && *info.AgentID == agentID:
			out.Accepted = true
			return nil
		case info.Status == domain.ChatInProgress:
			return nil
		case info.Status == domain.ChatOffered && info.AgentID != nil && *info.AgentID == agentID:
		case info.Status == domain.ChatWaiting && info.RoutingRule == domain.RuleAllAgents:
			if err := canTakeChat(tx, agentID); err != nil {
				return err
			}
		default:
			return fmt.Errorf("chat is %s and cannot be accepted by this agent: %w", info.Status, domain.ErrConflict)
		}
		now := time.Now().UTC()
		if err := tx.Model(&Chat{}).Where("id = ?", chatID).
			Updates(map[string]any{"status": domain.ChatInProgress, "agent_id": agentID, "accepted_at": now}).Error; err != nil {
			return err
		}
		out = AcceptOutcome{Accepted: true, Status: domain.ChatInProgress, AgentID: &agentID, Took: true, AcceptedAt: now}
		if info.Status == domain.ChatOffered && info.OfferedAt != nil {
			out.OfferedAt = *info.OfferedAt
		}
		return tx.Model(&User{}).Where("id = ?", agentID).Update("last_accepted_at", now).Error
	})
	return out, err
}

// ExpireOffer takes back an offer the agent did not accept in time and makes
// the agent Inactive. The chat keeps its place among the waiting chats.
// offeredAt names the offer (zero: the chat's offer to the agent, whenever
// made): a repeated expiry, whose first run committed before its workflow
// task was lost, must not take back a later offer of the chat to the same
// agent. It reports false when that offer was no longer pending (taken back,
// accepted, or followed by a later one).
func (s *Store) ExpireOffer(ctx context.Context, chatID, agentID uuid.UUID, offeredAt time.Time) (bool, error) {
	expired := false
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Chat{}).Where("id = ? AND status = ? AND agent_id = ?", chatID, domain.ChatOffered, agentID)
		if !offeredAt.IsZero() {
			q = q.Where("offered_at <= ?", offeredAt.Add(domain.OfferTimeSlack))
		}
		res := q.Updates(map[string]any{"status": domain.ChatWaiting, "agent_id": nil, "offered_at": nil})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		expired = true
		// Read by the users trigger: the agent's status event says why.
		if err := tx.Exec(`SELECT set_config('omnichat.status_reason', 'offer_expired', true)`).Error; err != nil {
			return err
		}
		return tx.Model(&User{}).Where("id = ?", agentID).Updates(map[string]any{"status": domain.AgentInactive, "updated_at": time.Now().UTC()}).Error
	})
	return expired, err
}

// CloseChat closes a chat with a reason; closing a closed chat is a no-op.
func (s *Store) CloseChat(ctx context.Context, chatID uuid.UUID, reason string) error {
	return s.db.WithContext(ctx).Model(&Chat{}).Where("id = ? AND status <> ?", chatID, domain.ChatClosed).
		Updates(map[string]any{"status": domain.ChatClosed, "closed_at": time.Now().UTC(), "close_reason": reason}).Error
}

// TransferToQueue moves a chat to another queue, where it waits to be routed afresh.
func (s *Store) TransferToQueue(ctx context.Context, chatID, queueID uuid.UUID) (ChatInfo, error) {
	var info ChatInfo
	err := s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		var q Queue
		if err := tx.First(&q, "id = ?", queueID).Error; err != nil {
			return notFound(err, "queue")
		}
		if err := tx.Model(&Chat{}).Where("id = ? AND status <> ?", chatID, domain.ChatClosed).
			Updates(map[string]any{"queue_id": queueID, "status": domain.ChatWaiting, "agent_id": nil, "offered_at": nil,
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
			return fmt.Errorf("target agent does not serve this chat's queue: %w", domain.ErrInvalid)
		}
		if err := canTakeChat(tx, agentID); err != nil {
			return fmt.Errorf("target %w", err)
		}
		return tx.Model(&Chat{}).Where("id = ?", chatID).
			Updates(map[string]any{"agent_id": agentID, "status": domain.ChatInProgress, "accepted_at": time.Now().UTC(), "agent_read_at": nil}).Error
	})
}

// SetAgentStatus sets an agent Active or Inactive.
// The agent's status event says the agent chose it.
func (s *Store) SetAgentStatus(ctx context.Context, agentID uuid.UUID, status string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT set_config('omnichat.status_reason', 'set_by_agent', true)`).Error; err != nil {
			return err
		}
		return tx.Model(&User{}).Where("id = ?", agentID).
			Updates(map[string]any{"status": status, "updated_at": time.Now().UTC()}).Error
	})
}

// RecordOutbound stores an agent's message once per (chat, idempotency key)
// and returns the stored row.
func (s *Store) RecordOutbound(ctx context.Context, m *Message) (*Message, error) {
	m.Direction = domain.Outbound
	m.Status = domain.MsgSending
	db := s.db.WithContext(ctx)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		ins := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(m)
		if ins.Error != nil || ins.RowsAffected == 0 {
			return ins.Error
		}
		// The agent answered: the completion timer the reply arms may close the chat.
		return tx.Model(&Chat{}).Where("id = ?", m.ChatID).Update("customer_waiting", false).Error
	})
	if err != nil {
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
	return conflictOn(s.db.WithContext(ctx).Model(&Message{}).Where("id = ?", id).Updates(cols).Error, "message with external ID "+externalID)
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

func suffix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
