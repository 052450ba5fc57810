package models

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/omnichat/omnichat/domain"
)

// ClaimResult says what claimOnOpen did.
type ClaimResult struct {
	// Offered: the chat was offered to AgentID at OfferedAt.
	Offered   bool
	AgentID   uuid.UUID
	OfferedAt time.Time
	// AcceptTimeout is the agent's time to accept, from OfferedAt.
	AcceptTimeout time.Duration
}

// claimOnOpen offers a chat that has just opened to a free agent of its
// queue, in the transaction that opened it, so a new chat needs no
// dispatcher pass and no offer signal. It takes the routing lock (capacity
// is checked as the dispatcher checks it) and claims only when no other chat
// of the queue waits: those are older and are the dispatcher's, in order.
// A chat it does not offer stays waiting for the dispatcher.
func claimOnOpen(tx *gorm.DB, chatID, queueID uuid.UUID, decide func(RoutingSnapshot) []Offer) (ClaimResult, error) {
	// Read before the lock, which every opening of the deployment queues on:
	// the lock holds back no admin's change of a setting anyway. A limit
	// lowered during the wait takes no chat from anyone, as a change just
	// after the claim would not; one raised is seen by the dispatcher, which
	// the workflow wakes for a chat left waiting.
	rs, err := (&Store{db: tx}).GetRoutingSettings(tx.Statement.Context)
	if err != nil {
		return ClaimResult{}, err
	}
	if err := lockRouting(tx); err != nil {
		return ClaimResult{}, err
	}
	snap := RoutingSnapshot{Limit: rs.SimultaneousChats, Accept: rs.AcceptTimeout,
		Waiting: []WaitingChat{{ID: chatID, QueueID: queueID}}}
	var rows []struct {
		ID             uuid.UUID
		Load           int
		LastAcceptedAt *time.Time
	}
	// One statement after the lock (its snapshot sees every earlier holder's
	// commit): no free agent is listed when an older chat of the queue waits.
	if err := tx.Raw(freeAgentsSQL+` SELECT DISTINCT id, load, last_accepted_at FROM free WHERE queue_id = @queue
		AND NOT EXISTS (SELECT 1 FROM chats WHERE queue_id = @queue AND status = @waiting AND id <> @chat) ORDER BY id`,
		map[string]any{"limit": snap.Limit, "queue": queueID, "waiting": domain.ChatWaiting, "chat": chatID}).Scan(&rows).Error; err != nil {
		return ClaimResult{}, fmt.Errorf("free agents: %w", err)
	}
	if len(rows) == 0 {
		return ClaimResult{}, nil
	}
	for _, r := range rows {
		snap.Agents = append(snap.Agents, AgentLoad{ID: r.ID, Load: r.Load, LastAcceptedAt: r.LastAcceptedAt, QueueIDs: []uuid.UUID{queueID}})
	}
	offers := decide(snap)
	if len(offers) == 0 {
		return ClaimResult{}, nil
	}
	// Postgres keeps microseconds: a retry reads back the very same instant.
	now := time.Now().UTC().Truncate(time.Microsecond)
	// The workflow learns of the offer from the opening's own result, so no
	// dispatcher pass has anything to tell it.
	res := tx.Model(&Chat{}).Where("id = ? AND status = ?", chatID, domain.ChatWaiting).
		Updates(map[string]any{"status": domain.ChatOffered, "agent_id": offers[0].AgentID, "offered_at": now, "offer_notified": true})
	if res.Error != nil {
		return ClaimResult{}, fmt.Errorf("record offer: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ClaimResult{}, nil
	}
	return ClaimResult{Offered: true, AgentID: offers[0].AgentID, OfferedAt: now, AcceptTimeout: rs.AcceptTimeout}, nil
}

// openGateIn opens the conversation's gate in tx (see OpenGate) when the
// chat's workflow has received every message signalled to the conversation
// (received: the last one's number). It reports whether it opened.
func openGateIn(tx *gorm.DB, chatID, channelID uuid.UUID, conversationID string, received int64) (bool, error) {
	if err := tx.Exec(gateLock, channelID, conversationID).Error; err != nil {
		return false, fmt.Errorf("gate lock: %w", err)
	}
	var signalled []int64
	if err := tx.Raw(`SELECT signalled FROM conversation_gates WHERE channel_id = ? AND conversation_id = ?`,
		channelID, conversationID).Scan(&signalled).Error; err != nil {
		return false, fmt.Errorf("read the gate: %w", err)
	}
	if len(signalled) > 0 && signalled[0] > received {
		return false, nil // a message is on its way to the workflow
	}
	res := tx.Model(&Chat{}).Where("id = ? AND status <> ?", chatID, domain.ChatClosed).Update("direct_ingest", true)
	if res.Error != nil {
		return false, fmt.Errorf("open the gate: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}
