// Package channels defines the provider interface every messenger implements
// and the registry that maps a channel's provider name to its implementation.
package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/omnichat/omnichat/domain"
)

// Config is one channel as a provider sees it. Secret and Settings are the
// provider's own (a bot token, an HMAC key, an outbound URL).
type Config struct {
	ID       string
	Provider string
	Secret   string
	Settings map[string]string
	// WebhookURL is where the provider must deliver this channel's updates:
	// SiteUrl + /webhooks/{provider}/{id}; empty when SiteUrl is not set.
	WebhookURL string
}

// Inbound messages, attachment references, message kinds and events are the
// shared vocabulary of package domain: a provider's ParseWebhook returns
// []domain.InboundMessage.

// ChallengeVerifier is implemented by providers that verify a webhook with a
// GET challenge (Messenger's hub.challenge).
type ChallengeVerifier interface {
	VerifyChallenge(cfg Config, query map[string][]string) (string, error)
}

// ProfileLess is implemented by providers that have no contact profiles, so
// no fetch is attempted for their contacts.
type ProfileLess interface {
	NoProfiles()
}

// ThreadReleaser is implemented by providers whose conversations can be
// handed back to a bot app when a chat closes.
type ThreadReleaser interface {
	ReleaseThread(ctx context.Context, cfg Config, conversationID string) error
}

// Outbound is an agent's message to send.
type Outbound struct {
	MessageID      string
	ConversationID string
	Text           string
	AgentID        string
	AgentName      string
	CreatedAt      time.Time
	// File is set when the agent sends an attachment (Text is then its caption).
	File *File
}

// SendResult is what the provider answered for a sent message.
type SendResult struct {
	ExternalID string
	// Pause asks the sender to wait this long before the next message of the
	// same conversation (the provider's pacing).
	Pause time.Duration
}

// File is an attachment's content an agent sends.
type File struct {
	Name      string
	MediaType string
	Content   []byte
}

// Profile is what the provider tells about a contact.
type Profile struct {
	Name  string
	Photo *domain.AttachmentRef
}

// Provider is one messenger integration.
type Provider interface {
	// Name is the provider's name in channel rows and webhook paths.
	Name() string
	// Validate checks a channel's secret and settings before it is saved.
	Validate(cfg Config) error
	// Register installs what the provider needs (a webhook) for an active channel.
	Register(ctx context.Context, cfg Config) error
	// Unregister removes it when the channel is deactivated or deleted.
	Unregister(ctx context.Context, cfg Config) error
	// VerifyWebhook authenticates a webhook request on its raw body, in constant time.
	VerifyWebhook(cfg Config, header http.Header, body []byte) error
	// ParseWebhook turns a verified body into inbound messages and events;
	// updates it does not handle yield no message and no error.
	ParseWebhook(cfg Config, body []byte) ([]domain.InboundMessage, error)
	// Send delivers an agent's message.
	Send(ctx context.Context, cfg Config, msg Outbound) (SendResult, error)
	// Profile fetches a contact's profile.
	Profile(ctx context.Context, cfg Config, userID string) (Profile, error)
	// Attachment downloads a file within the limits of the download policy.
	Attachment(ctx context.Context, cfg Config, ref domain.AttachmentRef) (Downloaded, error)
}

// Errors providers return.
var (
	// ErrBadSignature: the webhook's signature or secret is missing or wrong.
	ErrBadSignature = errors.New("bad webhook signature")
	// ErrBadPayload: the webhook's body is not what the provider sends.
	ErrBadPayload = errors.New("bad webhook payload")
	// ErrNotSupported: the provider has no such capability.
	ErrNotSupported = errors.New("not supported by this provider")
	// ErrInvalidConfig: the channel's settings are wrong.
	ErrInvalidConfig = errors.New("invalid channel configuration")
)

// PermanentError is a send failure that retrying cannot fix (a blocked bot, a
// closed messaging window, a rejected request). Reason is shown to the agent.
type PermanentError struct {
	Reason string
}

func (e *PermanentError) Error() string { return "permanent send failure: " + e.Reason }

// RetryAfterError asks the caller to wait before trying again (throttling).
type RetryAfterError struct {
	After  time.Duration
	Reason string
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("throttled, retry after %s: %s", e.After, e.Reason)
}

// Downloaded is a fetched attachment.
type Downloaded struct {
	MediaType string
	Content   []byte
}

// Registry maps provider names to providers.
type Registry struct {
	providers map[string]Provider
}

// NewRegistry registers the given providers.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{providers: map[string]Provider{}}
	for _, p := range ps {
		r.providers[p.Name()] = p
	}
	return r
}

// Get finds a provider by name.
func (r *Registry) Get(name string) (Provider, bool) {
	p, ok := r.providers[name]
	return p, ok
}

// Names lists the registered providers.
func (r *Registry) Names() []string {
	var ns []string
	for n := range r.providers {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Acknowledger is implemented by providers that must answer an interaction
// once omnichat has it (Telegram's answerCallbackQuery for a pressed
// button). It is called after the message is durable, best effort.
type Acknowledger interface {
	Acknowledge(ctx context.Context, cfg Config, m domain.InboundMessage) error
}
