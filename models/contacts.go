package models

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/omnichat/omnichat/domain"
)

// GetContact loads one contact.
func (s *Store) GetContact(ctx context.Context, id uuid.UUID) (*Contact, error) {
	var c Contact
	return &c, notFound(s.db.WithContext(ctx).First(&c, "id = ?", id).Error, "contact")
}

// SetContactPhoto records a contact's photo to fetch; it returns the
// attachment, or nil when the contact already has one.
func (s *Store) SetContactPhoto(ctx context.Context, contactID uuid.UUID, in domain.AttachmentRef) (*Attachment, error) {
	var out *Attachment
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Contact
		if err := tx.First(&c, "id = ?", contactID).Error; err != nil {
			return notFound(err, "contact")
		}
		if c.PhotoAttachmentID != nil {
			return nil
		}
		a := &Attachment{ID: uuid.New(), ChannelID: c.ChannelID, Kind: in.Kind, RemoteID: in.RemoteID, RemoteURL: in.URL,
			Name: "profile photo", MediaType: in.MediaType, Size: in.Size, Status: domain.AttachmentPending, CreatedAt: time.Now().UTC()}
		if err := tx.Create(a).Error; err != nil {
			return err
		}
		out = a
		return tx.Model(&Contact{}).Where("id = ?", contactID).Update("photo_attachment_id", a.ID).Error
	})
	return out, err
}

// SetContactName replaces a contact's name.
func (s *Store) SetContactName(ctx context.Context, contactID uuid.UUID, name string) error {
	return s.db.WithContext(ctx).Model(&Contact{}).Where("id = ?", contactID).Update("name", name).Error
}

// SetContactBlocked records that the customer blocked the bot (or allowed it
// again) and, when that changes what was known, notes it in the
// conversation's open chat so its agent sees why replies fail. It reports
// whether anything changed: a redelivered update changes nothing.
func (s *Store) SetContactBlocked(ctx context.Context, channelID uuid.UUID, senderID, conversationID string, blocked bool) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Contact{}).Where("channel_id = ? AND external_id = ?", channelID, senderID)
		var res *gorm.DB
		if blocked {
			res = q.Where("blocked_at IS NULL").Update("blocked_at", time.Now().UTC())
		} else {
			res = q.Where("blocked_at IS NOT NULL").Update("blocked_at", nil)
		}
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		changed = true
		var chatIDs []uuid.UUID
		if err := tx.Model(&Chat{}).Where("channel_id = ? AND conversation_id = ? AND status <> ?", channelID, conversationID, domain.ChatClosed).
			Pluck("id", &chatIDs).Error; err != nil || len(chatIDs) == 0 {
			return err
		}
		note := "The customer blocked the bot: replies cannot reach them until they allow it again."
		if !blocked {
			note = "The customer allowed the bot again: replies reach them."
		}
		return addSystemMessage(tx, chatIDs[0], channelID, note)
	})
	return changed, err
}

// addSystemMessage adds a note to a conversation that only agents see.
func addSystemMessage(tx *gorm.DB, chatID, channelID uuid.UUID, text string) error {
	return tx.Create(&Message{ID: uuid.New(), ChatID: chatID, ChannelID: channelID, Direction: domain.System, Kind: domain.KindText,
		Text: text, SenderName: "omnichat", Status: domain.MsgReceived, CreatedAt: time.Now().UTC()}).Error
}
