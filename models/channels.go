package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
	"gorm.io/gorm"
)

// CreateChannel inserts a channel.
func (s *Store) CreateChannel(ctx context.Context, c *Channel) error {
	if _, err := s.GetQueue(ctx, c.QueueID); err != nil {
		return err
	}
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	if c.Settings == nil {
		c.Settings = JSONMap{}
	}
	return conflictOn(s.db.WithContext(ctx).Create(c).Error, "channel")
}

// GetChannel loads a channel.
func (s *Store) GetChannel(ctx context.Context, id uuid.UUID) (*Channel, error) {
	var c Channel
	return &c, notFound(s.db.WithContext(ctx).First(&c, "id = ?", id).Error, "channel")
}

// ListChannels lists channels by name.
func (s *Store) ListChannels(ctx context.Context) ([]Channel, error) {
	var cs []Channel
	return cs, s.db.WithContext(ctx).Order("name, id").Find(&cs).Error
}

// SaveChannel writes a whole channel row.
func (s *Store) SaveChannel(ctx context.Context, c *Channel) error {
	if _, err := s.GetQueue(ctx, c.QueueID); err != nil {
		return err
	}
	c.UpdatedAt = time.Now().UTC()
	return conflictOn(s.db.WithContext(ctx).Save(c).Error, "channel")
}

// DeleteChannel removes a channel that never had a chat.
func (s *Store) DeleteChannel(ctx context.Context, id uuid.UUID) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Chat{}).Where("channel_id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("channel has %d chats; deactivate it instead: %w", n, domain.ErrConflict)
		}
		if err := tx.Delete(&Contact{}, "channel_id = ?", id).Error; err != nil {
			return err
		}
		res := tx.Delete(&Channel{}, "id = ?", id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("channel: %w", domain.ErrNotFound)
		}
		return nil
	})
}
