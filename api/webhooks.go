package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/workflows"
)

// webhook receives a provider's messages: rate-limit, read, verify, parse,
// then hand every message to its chat workflow. 200 means each is durable.
func (s *server) webhook(c *gin.Context) {
	channelID, err := uuid.Parse(c.Param("channelId"))
	if err != nil {
		problem(c, http.StatusNotFound, "no such channel")
		return
	}
	if !s.webhookLimits.allow(channelID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "webhook rate limit exceeded for this channel")
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	ch, err := s.Store.GetChannel(ctx, channelID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && ch.Provider != c.Param("provider")) {
		problem(c, http.StatusNotFound, "no such channel")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	provider, ok := s.Providers.Get(ch.Provider)
	if !ok {
		problem(c, http.StatusNotFound, "no such channel")
		return
	}
	cfg := activities.ChannelConfig(ch)
	if err := provider.VerifyWebhook(cfg, c.Request.Header, body); err != nil {
		fail(c, err)
		return
	}
	if !ch.Active {
		problem(c, http.StatusConflict, "channel is inactive and takes no new messages")
		return
	}
	msgs, err := provider.ParseWebhook(cfg, body)
	if err != nil {
		fail(c, err)
		return
	}
	for _, m := range msgs {
		err := s.Chats.DeliverInbound(ctx, ch.ID.String(), m.ConversationID, workflows.InboundMessage{
			ExternalID: m.ExternalID, SenderID: m.Sender.ID, SenderName: m.Sender.Name, Text: m.Text, SentAt: m.SentAt})
		if err != nil {
			loggerFrom(c).ErrorContext(ctx, "inbound message not handed to its chat", "channel", ch.ID, "error", err)
			c.Header("Retry-After", "5")
			problem(c, http.StatusServiceUnavailable, "message could not be made durable; retry later")
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"accepted": len(msgs)})
}
