package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
)

// webhookChannelID reads the channel of a webhook path and applies the
// channel's rate limit before any database or Temporal work.
func (s *server) webhookChannelID(c *gin.Context) (uuid.UUID, bool) {
	channelID, err := uuid.Parse(c.Param("channelId"))
	if err != nil {
		problem(c, http.StatusNotFound, "no such channel")
		return uuid.Nil, false
	}
	if !s.webhookLimits.allow(channelID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "webhook rate limit exceeded for this channel")
		return uuid.Nil, false
	}
	return channelID, true
}

// webhookChallenge answers a provider's GET verification (Messenger's hub.challenge).
func (s *server) webhookChallenge(c *gin.Context) {
	channelID, ok := s.webhookChannelID(c)
	if !ok {
		return
	}
	challenge, err := s.svc.Inbound.Challenge(c.Request.Context(), c.Param("provider"), channelID, c.Request.URL.Query())
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(challenge))
}

// webhook receives a provider's messages. 200 means each is durable. Whatever
// keeps omnichat from making them durable is answered 503 with Retry-After,
// never 500, and within WebhookTimeout, so the provider retries.
func (s *server) webhook(c *gin.Context) {
	channelID, ok := s.webhookChannelID(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		// A body cut short (the provider's connection dropped mid-request)
		// is nothing the provider did wrong: it is asked to retry.
		fail(c, retryable(err))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.WebhookTimeout)
	defer cancel()
	n, err := s.svc.Inbound.Receive(ctx, c.Param("provider"), channelID, c.Request.Header, body)
	if err != nil {
		fail(c, retryable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"accepted": n})
}

// retryable marks as unavailable every webhook failure that is not the
// request's own fault, so the provider keeps the message and retries.
func retryable(err error) error {
	if domain.KindOf(err) != "" || errors.Is(err, domain.ErrUnavailable) ||
		errors.Is(err, channels.ErrBadSignature) || errors.Is(err, channels.ErrBadPayload) || errors.Is(err, channels.ErrInvalidConfig) {
		return err
	}
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return err
	}
	return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
}
