package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// The facts a chat's workflow records. Each is idempotent: a retried
// activity finds its own earlier write. Each change that may let routing
// offer a chat (a chat waits, capacity frees) wakes routing in its transaction.

// Ingest stores an inbound message once per (channel, external ID), opening
// the chat when it is new.
func (c *Chats) Ingest(ctx context.Context, in models.IngestInput) (models.IngestResult, error) {
	var res models.IngestResult
	err := wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		var err error
		res, err = tx.Ingest(ctx, in)
		opened := in.OpenChat && res.Stored && res.Chat.Status == domain.ChatWaiting
		return opened && res.Chat.RoutingRule == domain.RuleAvailableAgent, err
	})
	if err == nil {
		// Nothing written: a provider's redelivery of a stored message.
		c.metrics.Ingested(!res.Stored && !res.Edited)
		if in.OpenChat && res.Stored && res.Chat.Status == domain.ChatOffered {
			c.metrics.Offered(1) // claimed by the opening
		}
	}
	return res, err
}

// RecordAccept makes the agent the chat's agent within their capacity; a chat
// another agent holds is reported, not refused, so the workflow learns the truth.
func (c *Chats) RecordAccept(ctx context.Context, chatID, agentID uuid.UUID) (models.AcceptOutcome, error) {
	out, err := c.store.Accept(ctx, chatID, agentID)
	if err == nil && out.Took {
		c.metrics.Accepted(out.OfferedAt, out.AcceptedAt)
	}
	return out, err
}

// ExpireOffer takes back the offer made to the agent at offeredAt (zero:
// whenever) that they did not accept in time and makes the agent Inactive;
// the chat keeps its place among the waiting chats.
func (c *Chats) ExpireOffer(ctx context.Context, chatID, agentID uuid.UUID, offeredAt time.Time) (bool, error) {
	var expired bool
	err := wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		var err error
		expired, err = tx.ExpireOffer(ctx, chatID, agentID, offeredAt)
		return expired, err
	})
	if err == nil && expired {
		c.metrics.OfferExpired()
	}
	return expired, err
}

// RecordClose closes a chat; its agent's capacity frees.
func (c *Chats) RecordClose(ctx context.Context, chatID uuid.UUID, reason string) error {
	return wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		return true, tx.CloseChat(ctx, chatID, reason)
	})
}

// RecordTransferToQueue moves a chat to a queue where it waits to be routed afresh.
func (c *Chats) RecordTransferToQueue(ctx context.Context, chatID, queueID uuid.UUID) (models.ChatInfo, error) {
	var info models.ChatInfo
	err := wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		var err error
		info, err = tx.TransferToQueue(ctx, chatID, queueID)
		return true, err
	})
	return info, err
}

// RecordTransferToAgent hands a chat to another agent of its queue; the
// previous agent's capacity frees.
func (c *Chats) RecordTransferToAgent(ctx context.Context, chatID, agentID uuid.UUID) error {
	return wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		return true, tx.TransferToAgent(ctx, chatID, agentID)
	})
}

// StartRouting moves a bot-owned chat into routing when omnichat gets the conversation.
func (c *Chats) StartRouting(ctx context.Context, chatID uuid.UUID) (models.ChatInfo, error) {
	var info models.ChatInfo
	err := wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		var err error
		info, err = tx.StartRouting(ctx, chatID)
		return true, err
	})
	return info, err
}

// OutboundInput is an agent's reply to store before it is sent.
type OutboundInput struct {
	MessageID      uuid.UUID
	ChatID         uuid.UUID
	AgentID        uuid.UUID
	Text           string
	IdempotencyKey string
	AttachmentID   *uuid.UUID
}

// RecordOutbound stores an agent's reply once per (chat, idempotency key),
// with the file it sends, in one transaction. isNew is false when the key
// matched an earlier message, which is returned instead.
func (c *Chats) RecordOutbound(ctx context.Context, in OutboundInput) (msg *Message, isNew bool, err error) {
	err = c.store.Tx(ctx, func(tx *models.Store) error {
		chat, err := tx.GetChat(ctx, in.ChatID)
		if err != nil {
			return err
		}
		agent, err := tx.GetUser(ctx, in.AgentID)
		if err != nil {
			return err
		}
		m := &models.Message{ID: in.MessageID, ChatID: chat.ID, ChannelID: chat.ChannelID, Text: in.Text, SenderName: agent.Name, AgentID: &agent.ID}
		if in.IdempotencyKey != "" {
			m.IdempotencyKey = &in.IdempotencyKey
		}
		if msg, err = tx.RecordOutbound(ctx, m); err != nil {
			return err
		}
		isNew = msg.ID == in.MessageID
		if in.AttachmentID == nil || !isNew {
			return nil
		}
		return tx.AttachToMessage(ctx, *in.AttachmentID, msg.ID)
	})
	return msg, isNew, err
}

// RecordTimeoutClose closes an in-progress chat whose completion timer fired,
// unless the customer wrote after the agent's last reply (Postgres decides,
// on the chat row, against a message being stored). It reports whether the
// chat closed.
func (c *Chats) RecordTimeoutClose(ctx context.Context, chatID uuid.UUID) (bool, error) {
	closed := false
	err := wakeRoutingAfter(ctx, c.store, func(tx *models.Store) (bool, error) {
		var err error
		closed, err = tx.CloseOnTimeout(ctx, chatID)
		return closed, err
	})
	return closed, err
}

// CustomerWaiting reports whether the customer wrote after the agent's last reply.
func (c *Chats) CustomerWaiting(ctx context.Context, chatID uuid.UUID) (bool, error) {
	return c.store.CustomerWaiting(ctx, chatID)
}

// PendingAttachments lists the chat's inbound files still to download.
func (c *Chats) PendingAttachments(ctx context.Context, chatID uuid.UUID) ([]uuid.UUID, error) {
	return c.store.PendingChatAttachments(ctx, chatID)
}

// OpenGate lets the API store the chat's messages once its workflow received
// every message signalled to the conversation (received: the last number).
func (c *Chats) OpenGate(ctx context.Context, chatID uuid.UUID, received int64) (bool, error) {
	return c.store.OpenGate(ctx, chatID, received)
}
