package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/omnichat/omnichat/domain"
)

// Notice kinds: what a chat's workflow is told about a message the API stored.
const (
	// NoticeAnswered: the customer wrote while the chat was in progress and
	// the agent had the last word (a completion timer may run).
	NoticeAnswered = "answered"
	// NoticeAttachment: a file to download; Ref is the attachment's ID.
	NoticeAttachment = "attachment"
)

// ChatNotice is a row of the notice outbox.
type ChatNotice struct {
	ID         int64 `gorm:"->"`
	ChatID     uuid.UUID
	WorkflowID string
	Kind       string
	Ref        string
	Attempts   int
	NextAt     time.Time
	LastError  *string
	CreatedAt  time.Time
}

// DirectResult says what StoreInOpenChat did.
type DirectResult struct {
	// Handled: the message is stored (or was before); nothing else is to do.
	Handled bool
	// Duplicate: it was stored before; nothing was written.
	Duplicate bool
	ChatID    uuid.UUID
	// Notices: how many notices for the chat's workflow were queued.
	Notices int
	// Stored: this call wrote the message. Its events woke no reader: the
	// caller calls WakeEvents after the commit.
	Stored bool
}

// directChatSQL finds the conversation's open chat that takes its messages
// from Postgres (arguments: channel, conversation, the closed status).
const directChatSQL = `channel_id = ? AND conversation_id = ? AND status <> ? AND direct_ingest`

// StoreInOpenChat stores a customer's message in its conversation's open chat
// when that chat takes messages from Postgres, in one transaction with its
// attachments, its event (the messages trigger) and the notices its workflow
// needs: one call of omnichat_store_inbound (migration 00011), which locks
// the chat row first: a close that committed before makes this a no-op
// (Handled false: the message opens the next chat), and a close on the
// completion timeout waits for this commit and then sees the customer
// waiting. A message stored before in any chat is a Duplicate.
func (s *Store) StoreInOpenChat(ctx context.Context, channelID uuid.UUID, m domain.InboundMessage) (DirectResult, error) {
	atts := make([]storedAttachment, len(m.Attachments))
	for i, a := range m.Attachments {
		atts[i] = storedAttachment{ID: uuid.New(), Kind: a.Kind, RemoteID: a.RemoteID, URL: a.URL, Name: a.Name, MediaType: a.MediaType, Size: a.Size}
	}
	attsJSON, err := json.Marshal(atts)
	if err != nil {
		return DirectResult{}, fmt.Errorf("encode attachments: %w", err)
	}
	var row struct {
		Handled, Duplicate bool
		Chat               *uuid.UUID
		Notices            int
		Stored             bool
	}
	err = s.db.WithContext(ctx).Raw(`SELECT handled, duplicate, chat, notices, stored FROM omnichat_store_inbound(?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		channelID, m.ConversationID, uuid.New(), m.ExternalID, inboundKind(m), m.Text, m.SenderName, providerTime(m), string(attsJSON)).Scan(&row).Error
	if err != nil { // already marked unavailable or refused by the callback Open registers
		return DirectResult{}, fmt.Errorf("store in the open chat: %w", err)
	}
	res := DirectResult{Handled: row.Handled, Duplicate: row.Duplicate, Notices: row.Notices, Stored: row.Stored}
	if row.Chat != nil {
		res.ChatID = *row.Chat
	}
	return res, nil
}

// storedAttachment is an attachment as omnichat_store_inbound reads it.
type storedAttachment struct {
	ID        uuid.UUID `json:"id"`
	Kind      string    `json:"kind"`
	RemoteID  string    `json:"remote_id"`
	URL       string    `json:"url"`
	Name      string    `json:"name"`
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size"`
}

// CloseOnTimeout closes an in-progress chat whose completion timer fired,
// unless the customer wrote after the agent's last reply. The condition is
// on the chat row, which a message's transaction locks and updates: whichever
// commits first decides. It reports whether the chat closed.
func (s *Store) CloseOnTimeout(ctx context.Context, chatID uuid.UUID) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Chat{}).
		Where("id = ? AND status = ? AND NOT customer_waiting", chatID, domain.ChatInProgress).
		Updates(map[string]any{"status": domain.ChatClosed, "closed_at": time.Now().UTC(), "close_reason": domain.CloseTimeout})
	if res.Error != nil {
		return false, markUnavailable(res.Error)
	}
	if res.RowsAffected > 0 {
		return true, nil
	}
	// An earlier attempt of this call may have closed it.
	var c Chat
	if err := s.db.WithContext(ctx).Select("status", "close_reason").Take(&c, "id = ?", chatID).Error; err != nil {
		return false, markUnavailable(notFound(err, "chat"))
	}
	return c.Status == domain.ChatClosed && c.CloseReason != nil && *c.CloseReason == domain.CloseTimeout, nil
}

// CustomerWaiting reports whether the customer wrote after the agent's last reply.
func (s *Store) CustomerWaiting(ctx context.Context, chatID uuid.UUID) (bool, error) {
	var c Chat
	err := s.db.WithContext(ctx).Select("customer_waiting").Take(&c, "id = ?", chatID).Error
	return c.CustomerWaiting, markUnavailable(notFound(err, "chat"))
}

// PendingChatAttachments lists the chat's inbound files still to download.
func (s *Store) PendingChatAttachments(ctx context.Context, chatID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.db.WithContext(ctx).Raw(`SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_id
		WHERE m.chat_id = ? AND m.direction = 'inbound' AND a.status = ? ORDER BY a.created_at, a.seq, a.id`, chatID, domain.AttachmentPending).
		Scan(&ids).Error
	return ids, markUnavailable(err)
}

// DrainNotices claims up to limit due notices (FOR UPDATE SKIP LOCKED, so
// several processes drain side by side), hands each to deliver, deletes the
// delivered ones and reschedules the others with backoff, in one
// transaction. It returns how many it claimed.
func (s *Store) DrainNotices(ctx context.Context, limit int, deliver func(ChatNotice) error) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var rows []ChatNotice
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}).
			Where("next_at <= ?", time.Now().UTC()).Order("id").Limit(limit).Find(&rows).Error; err != nil {
			return fmt.Errorf("claim notices: %w", err)
		}
		n = len(rows)
		var done []int64
		for _, r := range rows {
			err := deliver(r)
			if err == nil {
				done = append(done, r.ID)
				continue
			}
			backoff := min(time.Duration(1<<min(r.Attempts, 10))*100*time.Millisecond, time.Minute)
			if err := tx.Model(&ChatNotice{}).Where("id = ?", r.ID).Updates(map[string]any{"attempts": r.Attempts + 1,
				"next_at": time.Now().UTC().Add(backoff), "last_error": err.Error()}).Error; err != nil {
				return err
			}
		}
		if len(done) > 0 {
			return tx.Where("id IN ?", done).Delete(&ChatNotice{}).Error
		}
		return nil
	})
	return n, err
}

// NoticeBacklog counts notices not yet delivered.
func (s *Store) NoticeBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&ChatNotice{}).Count(&n).Error
	return n, markUnavailable(err)
}

// gateLock serialises, per conversation, the signals that go through its
// gate and the chat's opening of the gate. An advisory lock takes no
// transaction ID, so a transaction that waits for Temporal does not hold back
// the event log's readers (they read only below the oldest running writer).
const gateLock = `SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS text) || '/' || CAST(? AS text), 7))`

// ErrGateOpen: the conversation's chat takes messages from Postgres now
// (its gate opened while the message waited for the gate lock); the message
// is to be stored with StoreInOpenChat, not signalled.
var ErrGateOpen = errors.New("the conversation's gate is open")

// SignalThroughGate numbers a message of the conversation that goes to its
// workflow by signal and calls signal with the message so numbered, holding
// the conversation's gate lock until the signal returned and its number is
// recorded: a failed signal records nothing, and the numbers reach the
// workflow in order. A gate that opened while the message waited for the
// lock is ErrGateOpen: signalled now, the message would be stored after the
// conversation's next one, which the API stores at once.
func (s *Store) SignalThroughGate(ctx context.Context, channelID uuid.UUID, m domain.InboundMessage, signal func(domain.InboundMessage) error) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(gateLock, channelID, m.ConversationID).Error; err != nil {
			return fmt.Errorf("gate lock: %w", err)
		}
		var open bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM chats WHERE `+directChatSQL+`)`,
			channelID, m.ConversationID, domain.ChatClosed).Scan(&open).Error; err != nil {
			return fmt.Errorf("read the gate: %w", err)
		}
		if open {
			return ErrGateOpen
		}
		var n []int64
		if err := tx.Raw(`SELECT signalled FROM conversation_gates WHERE channel_id = ? AND conversation_id = ?`, channelID, m.ConversationID).
			Scan(&n).Error; err != nil {
			return fmt.Errorf("read the gate: %w", err)
		}
		m.GateSeq = 1
		if len(n) > 0 {
			m.GateSeq = n[0] + 1
		}
		if err := signal(m); err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO conversation_gates (channel_id, conversation_id, signalled) VALUES (?, ?, ?)
			ON CONFLICT (channel_id, conversation_id) DO UPDATE SET signalled = EXCLUDED.signalled`, channelID, m.ConversationID, m.GateSeq).Error
	})
}

// OpenGate lets the API store the chat's messages itself once the workflow
// received the conversation's last signalled message (received: its
// number). It waits for a signal in flight and reports whether it opened.
func (s *Store) OpenGate(ctx context.Context, chatID uuid.UUID, received int64) (bool, error) {
	opened := false
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Chat
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&c, "id = ?", chatID).Error; err != nil {
			return notFound(err, "chat")
		}
		if c.Status == domain.ChatClosed {
			return nil
		}
		var err error
		opened, err = openGateIn(tx, chatID, c.ChannelID, c.ConversationID, received)
		return err
	})
	return opened, err
}
