package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/workflows"
)

// webhookChannel resolves the channel of a webhook path: rate-limited before
// any database work, 404 for an unknown channel or a provider mismatch.
func (s *server) webhookChannel(c *gin.Context) (*models.Channel, channels.Provider, bool) {
	channelID, err := uuid.Parse(c.Param("channelId"))
	if err != nil {
		problem(c, http.StatusNotFound, "no such channel")
		return nil, nil, false
	}
	if !s.webhookLimits.allow(channelID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "webhook rate limit exceeded for this channel")
		return nil, nil, false
	}
	ch, err := s.Store.GetChannel(c.Request.Context(), channelID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && ch.Provider != c.Param("provider")) {
		problem(c, http.StatusNotFound, "no such channel")
		return nil, nil, false
	}
	if err != nil {
		fail(c, err)
		return nil, nil, false
	}
	provider, ok := s.Providers.Get(ch.Provider)
	if !ok {
		problem(c, http.StatusNotFound, "no such channel")
		return nil, nil, false
	}
	return ch, provider, true
}

// webhookChallenge answers a provider's GET verification (Messenger's hub.challenge).
func (s *server) webhookChallenge(c *gin.Context) {
	ch, provider, ok := s.webhookChannel(c)
	if !ok {
		return
	}
	v, ok := provider.(channels.ChallengeVerifier)
	if !ok {
		problem(c, http.StatusMethodNotAllowed, "this channel has no GET verification")
		return
	}
	challenge, err := v.VerifyChallenge(activities.ChannelConfig(ch), c.Request.URL.Query())
	if err != nil {
		problem(c, http.StatusForbidden, "verification token does not match")
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(challenge))
}

// webhook receives a provider's messages: rate-limit, read, verify, parse,
// then hand every message to its chat workflow. 200 means each is durable.
// Receipts and echoes only update stored messages.
func (s *server) webhook(c *gin.Context) {
	ch, provider, ok := s.webhookChannel(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
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
		var err error
		switch m.Event {
		case channels.EventDelivered:
			_, err = s.Store.ApplyReceipt(ctx, ch.ID, m.ConversationID, models.MsgDelivered, m.Watermark)
		case channels.EventRead:
			_, err = s.Store.ApplyReceipt(ctx, ch.ID, m.ConversationID, models.MsgRead, m.Watermark)
		case channels.EventEcho:
			_, err = s.Store.LinkEcho(ctx, ch.ID, m.ExternalID)
		default:
			err = s.Chats.DeliverInbound(ctx, ch.ID.String(), m.ConversationID, inboundMessage(m))
		}
		if err != nil {
			loggerFrom(c).ErrorContext(ctx, "inbound update not made durable", "channel", ch.ID, "error", err)
			c.Header("Retry-After", "5")
			problem(c, http.StatusServiceUnavailable, "message could not be made durable; retry later")
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"accepted": len(msgs)})
}

func inboundMessage(m channels.UnifiedMessage) workflows.InboundMessage {
	in := workflows.InboundMessage{ExternalID: m.ExternalID, SenderID: m.Sender.ID, SenderName: m.Sender.Name, Text: m.Text,
		Kind: m.Kind, SentAt: m.SentAt, Edited: m.Edited, Standby: m.Standby, Event: m.Event}
	for _, a := range m.Attachments {
		in.Attachments = append(in.Attachments, workflows.InboundAttachment{Kind: a.Kind, RemoteID: a.RemoteID, URL: a.URL,
			Name: a.Name, MediaType: a.MediaType, Size: a.Size})
	}
	return in
}
