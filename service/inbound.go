package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// ErrNoChallenge: the channel's provider has no GET verification.
var ErrNoChallenge = errors.New("this channel has no GET verification")

// Inbound receives the providers' webhooks.
type Inbound struct {
	channels *Channels
	chats    *Chats
	runtime  ChatRuntime
	notices  *Notices
	events   *Events
	logger   *slog.Logger
}

// webhookChannel resolves the channel of a webhook path; a channel that is
// unknown, or of another provider, or served by no provider here is ErrNotFound.
func (i *Inbound) webhookChannel(ctx context.Context, provider string, channelID uuid.UUID) (*Channel, channels.Provider, error) {
	ch, p, ok, err := i.channels.Provider(ctx, channelID)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && (!ok || ch.Provider != provider)) {
		return nil, nil, fmt.Errorf("no such channel: %w", domain.ErrNotFound)
	}
	return ch, p, err
}

// Challenge answers a provider's GET verification (Messenger's hub.challenge).
func (i *Inbound) Challenge(ctx context.Context, provider string, channelID uuid.UUID, query url.Values) (string, error) {
	ch, p, err := i.webhookChannel(ctx, provider, channelID)
	if err != nil {
		return "", err
	}
	v, ok := p.(channels.ChallengeVerifier)
	if !ok {
		return "", ErrNoChallenge
	}
	challenge, err := v.VerifyChallenge(Config(ch), query)
	if err != nil {
		return "", fmt.Errorf("verification token does not match: %w", domain.ErrForbidden)
	}
	return challenge, nil
}

// Receive authenticates a webhook on its raw body, parses it, and makes every
// message and event in it durable in Postgres: a message for an open chat is
// stored here, in one transaction with its event and the notices its
// workflow needs; a message that opens a chat, an edit and a handover go to
// the conversation's workflow by signal-with-start (which stores them once);
// receipts, echoes and blocks are recorded directly.
// It returns how many it accepted; an error means none may be assumed kept
// and the provider must retry.
func (i *Inbound) Receive(ctx context.Context, provider string, channelID uuid.UUID, header http.Header, body []byte) (int, error) {
	ch, p, err := i.webhookChannel(ctx, provider, channelID)
	if err != nil {
		return 0, err
	}
	cfg := Config(ch)
	if err := p.VerifyWebhook(cfg, header, body); err != nil {
		return 0, err
	}
	if !ch.Active {
		return 0, fmt.Errorf("channel is inactive and takes no new messages: %w", domain.ErrConflict)
	}
	msgs, err := p.ParseWebhook(cfg, body)
	if err != nil {
		return 0, err
	}
	for k := range msgs {
		msgs[k].Clean()
	}
	notify, wake := false, false
	// Wake-ups for what committed, even when a later message of the body fails.
	defer func() {
		if wake {
			i.events.WakeAfterCommit()
		}
		if notify {
			i.notices.Wake()
		}
	}()
	for _, m := range msgs {
		handled, err := i.chats.applyEvent(ctx, ch.ID, m)
		// A gate that opened while the message waited for it (ErrGateOpen):
		// the chat takes it from Postgres now.
		for attempt := 0; !handled && err == nil && directIngest(m); attempt++ {
			var res models.DirectResult
			res, err = i.chats.store.StoreInOpenChat(ctx, ch.ID, m)
			handled = res.Handled
			if handled {
				i.chats.metrics.Ingested(res.Duplicate)
			}
			notify = notify || res.Notices > 0
			wake = wake || res.Stored
			if handled || err != nil {
				break
			}
			// Numbered, so the chat takes messages from Postgres only
			// once it received this one (see models.OpenGate).
			err = i.chats.store.SignalThroughGate(ctx, ch.ID, m, func(m domain.InboundMessage) error {
				return i.runtime.DeliverInbound(ctx, ch.ID.String(), m.ConversationID, m)
			})
			handled = err == nil
			if errors.Is(err, models.ErrGateOpen) {
				if attempt < 2 {
					err = nil
				} else {
					// The chat kept opening and closing under the message: the provider retries.
					err = fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
				}
			}
		}
		if !handled && err == nil {
			err = i.runtime.DeliverInbound(ctx, ch.ID.String(), m.ConversationID, m)
		}
		if err != nil {
			return 0, fmt.Errorf("channel %s: message %s not made durable: %w", ch.ID, m.ExternalID, err)
		}
	}
	if a, ok := p.(channels.Acknowledger); ok {
		for _, m := range msgs {
			if m.ReplyToken == "" {
				continue
			}
			if err := a.Acknowledge(ctx, cfg, m); err != nil {
				i.logger.WarnContext(ctx, "interaction not acknowledged to the provider", "channel", ch.ID, "message", m.ExternalID, "error", err)
			}
		}
	}
	return len(msgs), nil
}

// directIngest reports whether a message may be stored by the API when its
// conversation has an open chat: plain messages may; edits (which look for
// the original in the chat's history) and conversation events go to the
// workflow.
func directIngest(m domain.InboundMessage) bool {
	return m.Event == "" && !m.Edited && m.ExternalID != ""
}
