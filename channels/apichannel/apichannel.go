// Package apichannel is the generic API channel: any system that can sign an
// HTTP request with HMAC-SHA256 can bring its customers' messages to omnichat
// and receive the agents' replies on its own endpoint.
package apichannel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
)

// Name is the provider name.
const Name = "api"

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body>".
const SignatureHeader = "X-Omnichat-Signature"

// SettingOutboundURL is the channel setting where agents' replies are posted.
const SettingOutboundURL = "outbound_url"

// Limits on inbound fields.
const (
	maxIDLen   = 256
	maxNameLen = 256
	maxTextLen = 10000
)

// Inbound is the webhook body.
type Inbound struct {
	ConversationID string    `json:"conversation_id"`
	MessageID      string    `json:"message_id"`
	Sender         Sender    `json:"sender"`
	Text           string    `json:"text"`
	Timestamp      time.Time `json:"timestamp"`
}

// Sender is the customer.
type Sender struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// OutboundBody is what omnichat posts to the outbound URL.
type OutboundBody struct {
	ChannelID      string        `json:"channel_id"`
	ConversationID string        `json:"conversation_id"`
	MessageID      string        `json:"message_id"`
	Text           string        `json:"text"`
	Agent          Sender        `json:"agent"`
	Timestamp      time.Time     `json:"timestamp"`
	Attachment     *OutboundFile `json:"attachment,omitempty"`
}

// OutboundFile is a file the agent sent; Content is base64 in JSON.
type OutboundFile struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Content   []byte `json:"content"`
}

// Provider implements channels.Provider.
type Provider struct {
	client *http.Client
}

// New builds the provider with the HTTP client used for replies.
func New(client *http.Client) *Provider {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{client: client}
}

// Name implements channels.Provider.
func (p *Provider) Name() string { return Name }

// Sign computes the signature header value for a body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Validate implements channels.Provider.
func (p *Provider) Validate(cfg channels.Config) error {
	if len(cfg.Secret) < 16 {
		return fmt.Errorf("secret must be at least 16 characters: %w", channels.ErrInvalidConfig)
	}
	raw := cfg.Settings[SettingOutboundURL]
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("settings.%s must be an absolute http(s) URL: %w", SettingOutboundURL, channels.ErrInvalidConfig)
	}
	for k := range cfg.Settings {
		if k != SettingOutboundURL {
			return fmt.Errorf("unknown setting %q: %w", k, channels.ErrInvalidConfig)
		}
	}
	return nil
}

// Register implements channels.Provider; the API channel has nothing to install.
func (p *Provider) Register(context.Context, channels.Config) error { return nil }

// Unregister implements channels.Provider.
func (p *Provider) Unregister(context.Context, channels.Config) error { return nil }

// VerifyWebhook implements channels.Provider.
func (p *Provider) VerifyWebhook(cfg channels.Config, header http.Header, body []byte) error {
	got := header.Get(SignatureHeader)
	if got == "" || !hmac.Equal([]byte(got), []byte(Sign(cfg.Secret, body))) {
		return channels.ErrBadSignature
	}
	return nil
}

// ParseWebhook implements channels.Provider.
func (p *Provider) ParseWebhook(_ channels.Config, body []byte) ([]domain.InboundMessage, error) {
	var in Inbound
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%w: %v", channels.ErrBadPayload, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", channels.ErrBadPayload)
	}
	var problems []string
	check := func(field, v string, max int, required bool) {
		switch {
		case required && strings.TrimSpace(v) == "":
			problems = append(problems, field+" is required")
		case len(v) > max:
			problems = append(problems, fmt.Sprintf("%s is longer than %d bytes", field, max))
		}
	}
	check("conversation_id", in.ConversationID, maxIDLen, true)
	check("message_id", in.MessageID, maxIDLen, true)
	check("sender.id", in.Sender.ID, maxIDLen, true)
	check("sender.name", in.Sender.Name, maxNameLen, false)
	check("text", in.Text, maxTextLen, true)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", channels.ErrBadPayload, strings.Join(problems, "; "))
	}
	name := in.Sender.Name
	if name == "" {
		name = in.Sender.ID
	}
	return []domain.InboundMessage{{
		ConversationID: in.ConversationID,
		ExternalID:     in.MessageID,
		SenderID:       in.Sender.ID,
		SenderName:     name,
		Text:           in.Text,
		Kind:           domain.KindText,
		SentAt:         in.Timestamp,
	}}, nil
}

// Send implements channels.Provider: it posts the reply, signed, to the
// channel's outbound URL. 4xx answers other than 408 and 429 are permanent.
func (p *Provider) Send(ctx context.Context, cfg channels.Config, msg channels.Outbound) (channels.SendResult, error) {
	out := OutboundBody{ChannelID: cfg.ID, ConversationID: msg.ConversationID, MessageID: msg.MessageID,
		Text: msg.Text, Agent: Sender{ID: msg.AgentID, Name: msg.AgentName}, Timestamp: msg.CreatedAt}
	if msg.File != nil {
		out.Attachment = &OutboundFile{Name: msg.File.Name, MediaType: msg.File.MediaType, Content: msg.File.Content}
	}
	body, err := json.Marshal(out)
	if err != nil {
		return channels.SendResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Settings[SettingOutboundURL], bytes.NewReader(body))
	if err != nil {
		return channels.SendResult{}, &channels.PermanentError{Reason: "bad outbound URL: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(cfg.Secret, body))
	req.Header.Set("Idempotency-Key", msg.MessageID)
	resp, err := p.client.Do(req)
	if err != nil {
		return channels.SendResult{}, fmt.Errorf("post reply: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		var r struct {
			MessageID string `json:"message_id"`
		}
		_ = json.Unmarshal(answer, &r)
		return channels.SendResult{ExternalID: r.MessageID}, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		after := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return channels.SendResult{}, &channels.RetryAfterError{After: after, Reason: "endpoint throttled the reply"}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout:
		return channels.SendResult{}, &channels.PermanentError{Reason: fmt.Sprintf("endpoint refused the reply: %d %s", resp.StatusCode, strings.TrimSpace(string(answer)))}
	default:
		return channels.SendResult{}, fmt.Errorf("endpoint answered %d", resp.StatusCode)
	}
}

// NoProfiles implements channels.ProfileLess: the sender's name comes with each message.
func (p *Provider) NoProfiles() {}

// Profile implements channels.Provider: the API channel sends the name with each message.
func (p *Provider) Profile(context.Context, channels.Config, string) (channels.Profile, error) {
	return channels.Profile{}, channels.ErrNotSupported
}

// Attachment implements channels.Provider.
func (p *Provider) Attachment(context.Context, channels.Config, domain.AttachmentRef) (channels.Downloaded, error) {
	return channels.Downloaded{}, channels.ErrNotSupported
}
