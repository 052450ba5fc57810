package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/telemetry"
)

// maxDeliveryFailures is how often a provider may fail a reply (not counting
// refusals for good, throttling, or our own database being away) before the
// reply is marked failed.
const maxDeliveryFailures = 8

// providerCallTimeout is how long one call to a provider may take before it
// counts as a failure of the provider. It is well within an attempt's
// StartToCloseTimeout, so a provider that never answers is counted like any
// other failure (and, after maxDeliveryFailures, the reply is failed) rather
// than timing the attempt out, which would be retried for ever uncounted.
const providerCallTimeout = 20 * time.Second

// Delivery hands agents' replies to their channels' providers.
type Delivery struct {
	Chats    *service.Chats
	Channels *service.Channels
	// Metrics counts sends by provider and result (nil: not counted).
	Metrics *telemetry.Metrics
	// SendTimeout bounds one call to a provider; zero means providerCallTimeout.
	SendTimeout time.Duration
}

// Register adds the group's activities to a worker.
func (a *Delivery) Register(r Registry) { register(r, a) }

// DeliverRequest names the message to send.
type DeliverRequest struct {
	MessageID string
}

// DeliverResult tells the chat how long to wait before its next message.
type DeliverResult struct {
	Pause time.Duration
}

// sentMark is heartbeated the moment the provider accepts a message, so an
// attempt that then cannot record it (the database away) is followed by one
// that records it without sending twice.
type sentMark struct {
	ExternalID string
	Pause      time.Duration
}

// Deliver hands a stored reply to its channel's provider and records the
// outcome. A permanent refusal marks the message failed and is not retried;
// throttling waits as long as the provider asks; after maxDeliveryFailures
// other failures of the provider the message is marked failed with the last
// one. Failures of the database are retried until it answers.
func (a *Delivery) Deliver(ctx context.Context, r DeliverRequest) (DeliverResult, error) {
	msgID, err := parseID("message", r.MessageID)
	if err != nil {
		return DeliverResult{}, err
	}
	ids := []any{"MessageID", r.MessageID}
	var sent sentMark
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &sent) == nil {
		return DeliverResult{Pause: sent.Pause}, failed(ctx, a.Chats.RecordSent(ctx, msgID, sent.ExternalID), ids...)
	}
	d, err := a.Chats.PendingDelivery(ctx, msgID)
	if err != nil || d == nil {
		return DeliverResult{}, failed(ctx, err, ids...) // nil: an earlier attempt finished it
	}
	ids = append(ids, "ChatID", d.Chat.ID.String())
	ch, provider, ok, err := a.Channels.Provider(ctx, d.Chat.ChannelID)
	if err != nil {
		return DeliverResult{}, failed(ctx, err, ids...)
	}
	if !ok {
		a.Metrics.Sent(ch.Provider, telemetry.SendRefused)
		return DeliverResult{}, a.refused(ctx, r.MessageID, "channel provider "+ch.Provider+" is not available")
	}
	timeout := a.SendTimeout
	if timeout <= 0 {
		timeout = providerCallTimeout
	}
	sendCtx, cancel := context.WithTimeout(ctx, timeout)
	res, err := provider.Send(sendCtx, service.Config(ch), d.Outbound)
	cancel()
	if err != nil && ctx.Err() != nil {
		// The attempt itself was cut (worker stopping): not the provider's failure.
		return DeliverResult{}, failed(ctx, fmt.Errorf("send message %s: %w", msgID, err), ids...)
	}
	var perm *channels.PermanentError
	var throttled *channels.RetryAfterError
	switch {
	case errors.As(err, &perm):
		a.Metrics.Sent(ch.Provider, telemetry.SendRefused)
		return DeliverResult{}, a.refused(ctx, r.MessageID, perm.Reason)
	case errors.As(err, &throttled):
		a.Metrics.Sent(ch.Provider, telemetry.SendThrottled)
		return DeliverResult{}, passing(ctx, "Throttled", throttled, throttled.After, ids...)
	case err != nil:
		exhausted, dbErr := a.Channels.ProviderFailed(ctx, "deliver:"+r.MessageID, maxDeliveryFailures, err)
		if dbErr != nil {
			return DeliverResult{}, failed(ctx, dbErr, ids...)
		}
		if exhausted {
			a.Metrics.Sent(ch.Provider, telemetry.SendRefused)
			return DeliverResult{}, a.refused(ctx, r.MessageID, fmt.Sprintf("not delivered after %d attempts: %v", maxDeliveryFailures, err))
		}
		a.Metrics.Sent(ch.Provider, telemetry.SendError)
		return DeliverResult{}, passing(ctx, "ProviderFailed", fmt.Errorf("send message %s: %w", msgID, err), 0, ids...)
	}
	a.Metrics.Sent(ch.Provider, telemetry.SendSent)
	activity.RecordHeartbeat(ctx, sentMark{ExternalID: res.ExternalID, Pause: res.Pause})
	if err := a.Chats.RecordSent(ctx, msgID, res.ExternalID); err != nil {
		return DeliverResult{}, failed(ctx, err, ids...)
	}
	if activity.GetInfo(ctx).Attempt > 1 {
		if err := a.Channels.ProviderSucceeded(ctx, "deliver:"+r.MessageID); err != nil {
			activity.GetLogger(ctx).Warn("failure count not cleared", "MessageID", r.MessageID, "Error", err)
		}
	}
	return DeliverResult{Pause: res.Pause}, nil
}

// refused marks the message failed with a reason the agent reads, and stops
// retrying; recording the failure itself is retried until the database answers.
func (a *Delivery) refused(ctx context.Context, messageID, reason string) error {
	msgID, err := parseID("message", messageID)
	if err != nil {
		return err
	}
	if err := a.Chats.RecordSendFailed(ctx, msgID, reason); err != nil {
		return failed(ctx, err, "MessageID", messageID)
	}
	return permanent(reason)
}
