package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
	"gorm.io/gorm"
)

// GetAttachment loads an attachment with its content.
func (s *Store) GetAttachment(ctx context.Context, id uuid.UUID) (*Attachment, error) {
	var a Attachment
	return &a, notFound(s.db.WithContext(ctx).First(&a, "id = ?", id).Error, "attachment")
}

// StoreAttachmentContent records a fetched file.
func (s *Store) StoreAttachmentContent(ctx context.Context, id uuid.UUID, mediaType string, content []byte) error {
	return s.db.WithContext(ctx).Model(&Attachment{}).Where("id = ?", id).
		Updates(map[string]any{"status": domain.AttachmentStored, "media_type": mediaType, "content": content, "size": len(content), "fail_reason": nil}).Error
}

// AttachmentContent returns a stored file's media type and bytes.
func (s *Store) AttachmentContent(ctx context.Context, id uuid.UUID) (string, []byte, error) {
	var a Attachment
	err := s.db.WithContext(ctx).Select("media_type", "content", "status").First(&a, "id = ?", id).Error
	if err != nil {
		return "", nil, notFound(err, "attachment")
	}
	if a.Status != domain.AttachmentStored {
		return "", nil, fmt.Errorf("attachment is %s: %w", a.Status, domain.ErrConflict)
	}
	return a.MediaType, a.Content, nil
}

// FailAttachment records why a file could not be fetched.
func (s *Store) FailAttachment(ctx context.Context, id uuid.UUID, reason string) error {
	return s.db.WithContext(ctx).Model(&Attachment{}).Where("id = ? AND status = ?", id, domain.AttachmentPending).
		Updates(map[string]any{"status": domain.AttachmentFailed, "fail_reason": reason}).Error
}

// CreateUpload stores a file an agent uploads to send.
func (s *Store) CreateUpload(ctx context.Context, channelID uuid.UUID, name, mediaType string, content []byte) (*Attachment, error) {
	kind := "document"
	if len(mediaType) > 6 && mediaType[:6] == "image/" {
		kind = "photo"
	}
	a := &Attachment{ID: uuid.New(), ChannelID: channelID, Kind: kind, Name: name, MediaType: mediaType, Size: int64(len(content)),
		Content: content, Status: domain.AttachmentStored, CreatedAt: time.Now().UTC()}
	return a, s.db.WithContext(ctx).Create(a).Error
}

// AttachToMessage links an uploaded file to the outbound message that sends it.
func (s *Store) AttachToMessage(ctx context.Context, attachmentID, messageID uuid.UUID) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Attachment{}).Where("id = ? AND (message_id IS NULL OR message_id = ?)", attachmentID, messageID).
			Update("message_id", messageID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("attachment is not available to send: %w", domain.ErrConflict)
		}
		var kind string
		if err := tx.Model(&Attachment{}).Where("id = ?", attachmentID).Pluck("kind", &kind).Error; err != nil {
			return err
		}
		return tx.Model(&Message{}).Where("id = ?", messageID).Update("kind", kind).Error
	})
}

// MessageAttachments lists the attachments of messages, without content.
func (s *Store) MessageAttachments(ctx context.Context, messageIDs []uuid.UUID) ([]Attachment, error) {
	var as []Attachment
	if len(messageIDs) == 0 {
		return as, nil
	}
	err := s.db.WithContext(ctx).Omit("content").Where("message_id IN ?", messageIDs).Order("created_at, seq, id").Find(&as).Error
	return as, err
}

// AgentAttachment loads an attachment's description (not its content) for an
// agent: found only when it belongs to a message of a chat the agent may see,
// or is the photo of such a chat's contact.
func (s *Store) AgentAttachment(ctx context.Context, agentID, id uuid.UUID) (*Attachment, error) {
	var a Attachment
	err := s.db.WithContext(ctx).Raw(`SELECT a.id, a.channel_id, a.message_id, a.kind, a.name, a.media_type, a.size, a.status, a.fail_reason, a.created_at
		FROM attachments a WHERE a.id = @id AND EXISTS (
		SELECT 1 FROM chats c
		WHERE (c.id = (SELECT m.chat_id FROM messages m WHERE m.id = a.message_id)
		    OR c.contact_id IN (SELECT ct.id FROM contacts ct WHERE ct.photo_attachment_id = a.id))
		  AND (c.agent_id = @agent OR c.queue_id IN (`+agentQueuesSQL+`)))`,
		map[string]any{"id": id, "agent": agentID}).Scan(&a).Error
	if err != nil {
		return nil, err
	}
	if a.ID == uuid.Nil {
		return nil, fmt.Errorf("attachment: %w", domain.ErrNotFound)
	}
	return &a, nil
}

// ApplyReceipt marks the outgoing messages of a conversation sent before the
// watermark as delivered or read; it never moves a status backwards.
func (s *Store) ApplyReceipt(ctx context.Context, channelID uuid.UUID, conversationID, status string, watermark time.Time) (int64, error) {
	from := []string{domain.MsgSending, domain.MsgSent}
	if status == domain.MsgRead {
		from = append(from, domain.MsgDelivered)
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE messages m SET status = ? FROM chats c
		WHERE m.chat_id = c.id AND c.channel_id = ? AND c.conversation_id = ? AND m.direction = 'outbound'
		  AND m.status IN ? AND m.created_at <= ?`, status, channelID, conversationID, from, watermark.UTC())
	return res.RowsAffected, res.Error
}

// LinkEcho recognises our own outgoing message coming back from the provider.
// It reports whether a message of ours has that external ID.
func (s *Store) LinkEcho(ctx context.Context, channelID uuid.UUID, externalID string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Message{}).
		Where("channel_id = ? AND direction = ? AND external_id = ? AND status = ?", channelID, domain.Outbound, externalID, domain.MsgSending).
		Update("status", domain.MsgSent)
	if res.Error != nil {
		return false, res.Error
	}
	var n int64
	err := s.db.WithContext(ctx).Model(&Message{}).Where("channel_id = ? AND direction = ? AND external_id = ?", channelID, domain.Outbound, externalID).Count(&n).Error
	return n > 0, err
}

// StartRouting moves a bot-owned chat into routing.
func (s *Store) StartRouting(ctx context.Context, chatID uuid.UUID) (ChatInfo, error) {
	var info ChatInfo
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&Chat{}).Where("id = ? AND status = ?", chatID, domain.ChatBot).
			Updates(map[string]any{"status": domain.ChatWaiting, "waiting_since": time.Now().UTC()}).Error; err != nil {
			return err
		}
		var err error
		info, err = chatInfo(tx, chatID)
		return err
	})
	return info, err
}

// DeleteUnsentUpload removes an agent's upload that no message sends.
func (s *Store) DeleteUnsentUpload(ctx context.Context, id uuid.UUID) error {
	return s.db.WithContext(ctx).Where("id = ? AND message_id IS NULL", id).Delete(&Attachment{}).Error
}
