package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/service"
)

func (s *server) channelRoutes(g *gin.RouterGroup) {
	chans := s.svc.Channels
	g.GET("/channels", func(c *gin.Context) { listAll(c, chans.List, s.channelDTO) })
	g.POST("/channels", func(c *gin.Context) {
		createOne(c, func(ctx context.Context, req *CreateChannelDTO) (*service.Channel, error) {
			return chans.Create(ctx, service.NewChannel{Provider: req.Provider, Name: req.Name, Active: req.Active,
				QueueID: req.QueueID, Secret: req.Secret, Settings: req.Settings})
		}, s.channelDTO)
	})
	g.GET("/channels/:id", func(c *gin.Context) { getOne(c, chans.Get, s.channelDTO) })
	g.PATCH("/channels/:id", func(c *gin.Context) {
		patchOne(c, func(ctx context.Context, id uuid.UUID, req *PatchChannelDTO) (*service.Channel, error) {
			return chans.Update(ctx, id, service.ChannelPatch{Name: req.Name, Active: req.Active, QueueID: req.QueueID,
				Secret: req.Secret, Settings: req.Settings})
		}, s.channelDTO)
	})
	g.DELETE("/channels/:id", func(c *gin.Context) { deleteOne(c, chans.Delete) })
}

// ChannelDTO is a channel; its secret and secret settings are never returned.
type ChannelDTO struct {
	ID                uuid.UUID         `json:"id"`
	Provider          string            `json:"provider"`
	Name              string            `json:"name"`
	Active            bool              `json:"active"`
	QueueID           uuid.UUID         `json:"queue_id"`
	Settings          map[string]string `json:"settings"`
	SecretSet         bool              `json:"secret_set"`
	SecretSettingsSet []string          `json:"secret_settings_set"`
	WebhookURL        string            `json:"webhook_path"`
	CreatedAt         time.Time         `json:"created_at"`
}

func (s *server) channelDTO(ch *service.Channel) ChannelDTO {
	shown, secretSet := s.svc.Channels.PublicSettings(ch)
	return ChannelDTO{ID: ch.ID, Provider: ch.Provider, Name: ch.Name, Active: ch.Active, QueueID: ch.QueueID, Settings: shown,
		SecretSet: ch.Secret != "", SecretSettingsSet: secretSet, WebhookURL: service.WebhookPath(ch), CreatedAt: ch.CreatedAt}
}

// CreateChannelDTO creates a channel. Secret is write-only.
type CreateChannelDTO struct {
	Provider string            `json:"provider" binding:"required,min=1,max=50"`
	Name     string            `json:"name" binding:"required,min=1,max=200"`
	Active   *bool             `json:"active"`
	QueueID  uuid.UUID         `json:"queue_id" binding:"required"`
	Secret   string            `json:"secret" binding:"required,min=1,max=1000"`
	Settings map[string]string `json:"settings" binding:"omitempty,max=20"`
}

// PatchChannelDTO changes a channel; settings are merged into the stored ones ("" removes a key).
type PatchChannelDTO struct {
	Name     *string           `json:"name" binding:"omitempty,min=1,max=200"`
	Active   *bool             `json:"active"`
	QueueID  *uuid.UUID        `json:"queue_id"`
	Secret   *string           `json:"secret" binding:"omitempty,min=1,max=1000"`
	Settings map[string]string `json:"settings" binding:"omitempty,max=20"`
}
