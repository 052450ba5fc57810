package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Delivery is an agent's reply ready for its provider.
type Delivery struct {
	Message *Message
	Chat    *models.Chat
	// Outbound is the provider's view of the message, with its file if any.
	Outbound channels.Outbound
}

// PendingDelivery loads a reply still to send; nil when an earlier attempt finished it.
func (c *Chats) PendingDelivery(ctx context.Context, msgID uuid.UUID) (*Delivery, error) {
	msg, err := c.store.GetMessage(ctx, msgID)
	if err != nil || msg.Status != domain.MsgSending {
		return nil, err
	}
	chat, err := c.store.GetChat(ctx, msg.ChatID)
	if err != nil {
		return nil, err
	}
	agentID := ""
	if msg.AgentID != nil {
		agentID = msg.AgentID.String()
	}
	out := channels.Outbound{MessageID: msg.ID.String(), ConversationID: chat.ConversationID,
		Text: msg.Text, AgentID: agentID, AgentName: msg.SenderName, CreatedAt: msg.CreatedAt}
	atts, err := c.store.MessageAttachments(ctx, []uuid.UUID{msgID})
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		mt, content, err := c.files.AttachmentContent(ctx, atts[0].ID)
		if err != nil {
			return nil, err
		}
		out.File = &channels.File{Name: atts[0].Name, MediaType: mt, Content: content}
	}
	return &Delivery{Message: msg, Chat: chat, Outbound: out}, nil
}

// RecordSent records that the provider accepted a reply, with its ID there.
//
// An ID another message of the channel already holds (an API-channel
// endpoint answering the same message_id for every reply) cannot be kept;
// the reply was sent all the same, so it is recorded without the ID. Retrying
// the write could never succeed, and the conversation's next chat would wait
// behind it for ever.
func (c *Chats) RecordSent(ctx context.Context, msgID uuid.UUID, externalID string) error {
	err := c.store.SetMessageStatus(ctx, msgID, domain.MsgSent, externalID, "")
	if externalID != "" && errors.Is(err, domain.ErrConflict) {
		return c.store.SetMessageStatus(ctx, msgID, domain.MsgSent, "", "")
	}
	return err
}

// RecordSendFailed records why a reply could not be sent; the agent sees the reason.
func (c *Chats) RecordSendFailed(ctx context.Context, msgID uuid.UUID, reason string) error {
	return c.store.SetMessageStatus(ctx, msgID, domain.MsgFailed, "", reason)
}

// PendingAttachment loads an inbound file still to download; nil when it
// was stored or failed already.
func (c *Chats) PendingAttachment(ctx context.Context, id uuid.UUID) (*Attachment, error) {
	a, err := c.store.GetAttachment(ctx, id)
	if err != nil || a.Status != domain.AttachmentPending {
		return nil, err
	}
	return a, nil
}

// StoreAttachment keeps a downloaded file.
func (c *Chats) StoreAttachment(ctx context.Context, id uuid.UUID, d channels.Downloaded) error {
	return c.files.StoreAttachmentContent(ctx, id, d.MediaType, d.Content)
}

// FailAttachment records why a file could not be downloaded; its message is kept.
func (c *Chats) FailAttachment(ctx context.Context, id uuid.UUID, reason string) error {
	return c.store.FailAttachment(ctx, id, reason)
}

// Contact loads a contact.
func (c *Chats) Contact(ctx context.Context, id uuid.UUID) (*Contact, error) {
	return c.store.GetContact(ctx, id)
}

// ApplyProfile records what a provider tells about a contact: a new name, and
// the photo to download (returned; nil when the contact has one already).
func (c *Chats) ApplyProfile(ctx context.Context, contact *Contact, prof channels.Profile) (*Attachment, error) {
	if prof.Name != "" && prof.Name != contact.Name {
		if err := c.store.SetContactName(ctx, contact.ID, prof.Name); err != nil {
			return nil, err
		}
	}
	if prof.Photo == nil {
		return nil, nil
	}
	return c.store.SetContactPhoto(ctx, contact.ID, *prof.Photo)
}

// Chat loads a chat row.
func (c *Chats) Chat(ctx context.Context, id uuid.UUID) (*models.Chat, error) {
	return c.store.GetChat(ctx, id)
}

// applyEvent records a conversation event that changes stored facts only:
// delivery and read receipts, echoes of our own replies, the customer
// blocking the bot. It reports false for an event that is not of this kind.
func (c *Chats) applyEvent(ctx context.Context, channelID uuid.UUID, m domain.InboundMessage) (bool, error) {
	var err error
	switch m.Event {
	case domain.EventDelivered:
		_, err = c.store.ApplyReceipt(ctx, channelID, m.ConversationID, domain.MsgDelivered, m.Watermark)
	case domain.EventRead:
		_, err = c.store.ApplyReceipt(ctx, channelID, m.ConversationID, domain.MsgRead, m.Watermark)
	case domain.EventEcho:
		_, err = c.store.LinkEcho(ctx, channelID, m.ExternalID)
	case domain.EventBlocked, domain.EventUnblocked:
		_, err = c.store.SetContactBlocked(ctx, channelID, m.SenderID, m.ConversationID, m.Event == domain.EventBlocked)
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("record %s event: %w", m.Event, err)
	}
	return true, nil
}
