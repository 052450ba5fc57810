package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/models"
)

// RecordOutboundRequest is an agent's message to store before it is sent.
type RecordOutboundRequest struct {
	MessageID      string
	ChatID         string
	AgentID        string
	Text           string
	IdempotencyKey string
	AttachmentID   string
}

// OutboundRecord is the stored message.
type OutboundRecord struct {
	MessageID string
	Status    string
	// New is false when the idempotency key matched an earlier message.
	New bool
}

// RecordOutbound stores the message once per (chat, idempotency key).
func (a *Activities) RecordOutbound(ctx context.Context, r RecordOutboundRequest) (OutboundRecord, error) {
	msgID, err := parseID("message", r.MessageID)
	if err != nil {
		return OutboundRecord{}, err
	}
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return OutboundRecord{}, err
	}
	agentID, err := parseID("agent", r.AgentID)
	if err != nil {
		return OutboundRecord{}, err
	}
	chat, err := a.Store.GetChat(ctx, chatID)
	if err != nil {
		return OutboundRecord{}, domainError(err)
	}
	agent, err := a.Store.GetUser(ctx, agentID)
	if err != nil {
		return OutboundRecord{}, domainError(err)
	}
	m := &models.Message{ID: msgID, ChatID: chatID, ChannelID: chat.ChannelID, Text: r.Text, SenderName: agent.Name, AgentID: &agentID}
	if r.IdempotencyKey != "" {
		m.IdempotencyKey = &r.IdempotencyKey
	}
	stored, err := a.Store.RecordOutbound(ctx, m)
	if err != nil {
		return OutboundRecord{}, err
	}
	if r.AttachmentID != "" && stored.ID == msgID {
		attID, err := parseID("attachment", r.AttachmentID)
		if err != nil {
			return OutboundRecord{}, err
		}
		if err := a.Store.AttachToMessage(ctx, attID, msgID); err != nil {
			return OutboundRecord{}, domainError(err)
		}
	}
	return OutboundRecord{MessageID: stored.ID.String(), Status: stored.Status, New: stored.ID == msgID}, nil
}

// DeliverRequest names the message to send.
type DeliverRequest struct {
	MessageID string
}

// Deliver hands a stored agent message to its channel's provider and records
// the outcome. A permanent refusal marks the message failed and is not retried;
// throttling waits as long as the provider asks.
func (a *Activities) Deliver(ctx context.Context, r DeliverRequest) (DeliverResult, error) {
	msgID, err := parseID("message", r.MessageID)
	if err != nil {
		return DeliverResult{}, err
	}
	msg, err := a.Store.GetMessage(ctx, msgID)
	if err != nil {
		return DeliverResult{}, domainError(err)
	}
	if msg.Status != models.MsgSending {
		return DeliverResult{}, nil // an earlier attempt finished it
	}
	chat, err := a.Store.GetChat(ctx, msg.ChatID)
	if err != nil {
		return DeliverResult{}, domainError(err)
	}
	ch, provider, ok, err := a.channelProvider(ctx, chat.ChannelID)
	if err != nil {
		return DeliverResult{}, err
	}
	if !ok {
		return DeliverResult{}, a.fail(ctx, msgID, "channel provider "+ch.Provider+" is not available")
	}
	agentID := ""
	if msg.AgentID != nil {
		agentID = msg.AgentID.String()
	}
	out := channels.Outbound{MessageID: msg.ID.String(), ConversationID: chat.ConversationID,
		Text: msg.Text, AgentID: agentID, AgentName: msg.SenderName, CreatedAt: msg.CreatedAt}
	if atts, err := a.Store.MessageAttachments(ctx, []uuid.UUID{msgID}); err != nil {
		return DeliverResult{}, err
	} else if len(atts) > 0 {
		mt, content, err := a.Files.AttachmentContent(ctx, atts[0].ID)
		if err != nil {
			return DeliverResult{}, domainError(err)
		}
		out.File = &channels.File{Name: atts[0].Name, MediaType: mt, Content: content}
	}
	res, err := provider.Send(ctx, ChannelConfig(ch), out)
	var perm *channels.PermanentError
	var throttled *channels.RetryAfterError
	switch {
	case errors.As(err, &perm):
		return DeliverResult{}, a.fail(ctx, msgID, perm.Reason)
	case errors.As(err, &throttled):
		return DeliverResult{}, temporal.NewApplicationErrorWithOptions(throttled.Error(), "Throttled",
			temporal.ApplicationErrorOptions{NextRetryDelay: throttled.After})
	case err != nil:
		return DeliverResult{}, fmt.Errorf("send message %s: %w", msgID, err)
	}
	return DeliverResult{Pause: res.Pause}, a.Store.SetMessageStatus(ctx, msgID, models.MsgSent, res.ExternalID, "")
}

func (a *Activities) fail(ctx context.Context, msgID uuid.UUID, reason string) error {
	if err := a.Store.SetMessageStatus(ctx, msgID, models.MsgFailed, "", reason); err != nil {
		return err
	}
	return temporal.NewNonRetryableApplicationError(reason, errPermanentSend, nil)
}

// MarkFailedRequest records that a message could not be sent.
type MarkFailedRequest struct {
	MessageID string
	Reason    string
}

// MarkFailed records a send that ran out of retries.
func (a *Activities) MarkFailed(ctx context.Context, r MarkFailedRequest) error {
	msgID, err := parseID("message", r.MessageID)
	if err != nil {
		return err
	}
	return a.Store.SetMessageStatus(ctx, msgID, models.MsgFailed, "", r.Reason)
}

// ChannelConfig is the provider's view of a channel row.
func ChannelConfig(ch *models.Channel) channels.Config {
	return channels.Config{ID: ch.ID.String(), Provider: ch.Provider, Secret: ch.Secret, Settings: ch.Settings}
}
