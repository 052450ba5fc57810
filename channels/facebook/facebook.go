// Package facebook is the Facebook Messenger channel: a Page's conversations
// through the Messenger Platform, with signed webhooks, the Send API, Graph
// profiles and the handover protocol.
package facebook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/download"
	"github.com/omnichat/omnichat/domain"
)

// Name is the provider name.
const Name = "facebook"

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body with the app secret>".
const SignatureHeader = "X-Hub-Signature-256"

// DefaultGraphURL is the Graph API with the version omnichat speaks.
const DefaultGraphURL = "https://graph.facebook.com/v21.0"

// Channel settings.
const (
	SettingPageID      = "page_id"
	SettingAppID       = "app_id"     // omnichat's own Meta app: handovers to it start routing
	SettingAppSecret   = "app_secret" // signs webhooks (write-only)
	SettingVerifyToken = "verify_token"
	SettingBotAppID    = "bot_app_id" // optional: the bot app that gets the conversation back on close
)

var digits = regexp.MustCompile(`^[0-9]{1,30}$`)

// Provider implements channels.Provider for Messenger.
type Provider struct {
	graph   string
	client  *http.Client
	fetcher *download.Fetcher
}

// New builds the provider for a Graph base URL (DefaultGraphURL, or a fake in tests).
func New(graphURL string, client *http.Client) (*Provider, error) {
	u, err := url.Parse(graphURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("facebook graph URL %q: %w", graphURL, channels.ErrInvalidConfig)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Provider{graph: strings.TrimRight(graphURL, "/"), client: client,
		// Attachments and profile pictures come from Meta's CDNs, or from the configured Graph host.
		fetcher: download.New(download.Policy{ConfiguredHosts: []string{u.Host}, Suffixes: []string{".fbcdn.net", ".fbsbx.com", ".facebook.com"}})}, nil
}

// Name implements channels.Provider.
func (p *Provider) Name() string { return Name }

// SecretSettings are settings the API never returns.
func (p *Provider) SecretSettings() []string { return []string{SettingAppSecret, SettingVerifyToken} }

// ReleasesThread reports whether closed chats go back to a bot app.
func (p *Provider) ReleasesThread(cfg channels.Config) bool {
	return cfg.Settings[SettingBotAppID] != ""
}

// Validate implements channels.Provider: the secret is the Page access token.
func (p *Provider) Validate(cfg channels.Config) error {
	var problems []string
	if len(cfg.Secret) < 20 {
		problems = append(problems, "secret must be the Page access token")
	}
	s := cfg.Settings
	if !digits.MatchString(s[SettingPageID]) {
		problems = append(problems, "settings.page_id must be the numeric Page ID")
	}
	if s[SettingAppID] != "" && !digits.MatchString(s[SettingAppID]) {
		problems = append(problems, "settings.app_id must be a numeric app ID")
	}
	if s[SettingBotAppID] != "" && !digits.MatchString(s[SettingBotAppID]) {
		problems = append(problems, "settings.bot_app_id must be a numeric app ID")
	}
	if len(s[SettingAppSecret]) < 16 {
		problems = append(problems, "settings.app_secret must be the app secret")
	}
	if len(s[SettingVerifyToken]) < 8 {
		problems = append(problems, "settings.verify_token must be at least 8 characters")
	}
	for k := range s {
		switch k {
		case SettingPageID, SettingAppID, SettingAppSecret, SettingVerifyToken, SettingBotAppID:
		default:
			problems = append(problems, "unknown setting "+k)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(problems, "; "), channels.ErrInvalidConfig)
	}
	return nil
}

// graphError is a Graph API refusal.
type graphError struct {
	Status  int
	Code    int    `json:"code"`
	Subcode int    `json:"error_subcode"`
	Message string `json:"message"`
}

func (e *graphError) Error() string {
	return fmt.Sprintf("facebook: %d (#%d) %s", e.Status, e.Code, e.Message)
}

// call sends a Graph request with the Page access token and decodes the answer.
func (p *Provider) call(ctx context.Context, method, path, token string, query url.Values, body io.Reader, contentType string, out any) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("access_token", token)
	req, err := http.NewRequestWithContext(ctx, method, p.graph+path+"?"+query.Encode(), body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// The URL holds the access token: keep it out of errors and logs.
		return fmt.Errorf("facebook %s %s: %w", method, path, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("facebook %s: read answer: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error graphError `json:"error"`
		}
		_ = json.Unmarshal(raw, &env)
		env.Error.Status = resp.StatusCode
		return &env.Error
	}
	if out != nil {
		_ = json.Unmarshal(raw, out) // a 2xx is success even if the answer is odd
	}
	return nil
}

func (p *Provider) postJSON(ctx context.Context, path, token string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return p.call(ctx, http.MethodPost, path, token, nil, bytes.NewReader(b), "application/json", out)
}

// Register implements channels.Provider: the token must reach the configured
// Page, and the app is subscribed to the Page's messaging events. The
// callback URL and verify token are set once in the Meta app's settings.
func (p *Provider) Register(ctx context.Context, cfg channels.Config) error {
	pageID := cfg.Settings[SettingPageID]
	var me struct {
		ID string `json:"id"`
	}
	if err := p.call(ctx, http.MethodGet, "/me", cfg.Secret, url.Values{"fields": {"id,name"}}, nil, "", &me); err != nil {
		var g *graphError
		if errors.As(err, &g) && g.Status < 500 {
			return fmt.Errorf("the Page access token was refused by Facebook (%s): %w", g.Message, channels.ErrInvalidConfig)
		}
		return err
	}
	if me.ID != pageID {
		return fmt.Errorf("the access token belongs to Page %s, not settings.page_id %s: %w", me.ID, pageID, channels.ErrInvalidConfig)
	}
	fields := "messages,message_echoes,message_deliveries,message_reads,messaging_postbacks,messaging_handovers,standby"
	return p.call(ctx, http.MethodPost, "/"+pageID+"/subscribed_apps", cfg.Secret, url.Values{"subscribed_fields": {fields}}, nil, "", nil)
}

// Unregister implements channels.Provider.
func (p *Provider) Unregister(ctx context.Context, cfg channels.Config) error {
	return p.call(ctx, http.MethodDelete, "/"+cfg.Settings[SettingPageID]+"/subscribed_apps", cfg.Secret, nil, nil, "", nil)
}

// VerifyChallenge implements channels.ChallengeVerifier.
func (p *Provider) VerifyChallenge(cfg channels.Config, query map[string][]string) (string, error) {
	get := func(k string) string {
		if v := query[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	token := get("hub.verify_token")
	if get("hub.mode") != "subscribe" || token == "" || !hmac.Equal([]byte(token), []byte(cfg.Settings[SettingVerifyToken])) {
		return "", channels.ErrBadSignature
	}
	return get("hub.challenge"), nil
}

// Sign computes the X-Hub-Signature-256 value of a body.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook implements channels.Provider, on the raw body before any parsing.
func (p *Provider) VerifyWebhook(cfg channels.Config, header http.Header, body []byte) error {
	got := strings.ToLower(header.Get(SignatureHeader))
	if got == "" || !hmac.Equal([]byte(got), []byte(Sign(cfg.Settings[SettingAppSecret], body))) {
		return channels.ErrBadSignature
	}
	return nil
}

// Send implements channels.Provider with the Send API (messaging_type RESPONSE).
func (p *Provider) Send(ctx context.Context, cfg channels.Config, msg channels.Outbound) (channels.SendResult, error) {
	path := "/" + cfg.Settings[SettingPageID] + "/messages"
	recipient := map[string]string{"id": msg.ConversationID}
	var res struct {
		MessageID string `json:"message_id"`
	}
	var err error
	if msg.File != nil {
		err = p.sendFile(ctx, cfg, path, msg, &res)
		if err == nil && msg.Text != "" {
			// The caption follows as a text message. The file is already out and
			// a retried send would upload it again, so a failed caption fails
			// the send for good: the message is marked failed with this reason
			// (not sent), and the agent can send the text again.
			cerr := p.postJSON(ctx, path, cfg.Secret, map[string]any{"recipient": recipient, "messaging_type": "RESPONSE",
				"message": map[string]string{"text": msg.Text}}, nil)
			if cerr != nil {
				return channels.SendResult{}, &channels.PermanentError{Reason: "Messenger: the file was sent but its caption was not: " + cerr.Error()}
			}
		}
	} else {
		err = p.postJSON(ctx, path, cfg.Secret, map[string]any{"recipient": recipient, "messaging_type": "RESPONSE",
			"message": map[string]string{"text": msg.Text}}, &res)
	}
	if err != nil {
		return channels.SendResult{}, sendError(err)
	}
	return channels.SendResult{ExternalID: res.MessageID}, nil
}

func (p *Provider) sendFile(ctx context.Context, cfg channels.Config, path string, msg channels.Outbound, out any) error {
	kind := "file"
	switch {
	case strings.HasPrefix(msg.File.MediaType, "image/"):
		kind = "image"
	case strings.HasPrefix(msg.File.MediaType, "video/"):
		kind = "video"
	case strings.HasPrefix(msg.File.MediaType, "audio/"):
		kind = "audio"
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	rcpt, _ := json.Marshal(map[string]string{"id": msg.ConversationID})
	m, _ := json.Marshal(map[string]any{"attachment": map[string]any{"type": kind, "payload": map[string]bool{"is_reusable": false}}})
	_ = w.WriteField("recipient", string(rcpt))
	_ = w.WriteField("messaging_type", "RESPONSE")
	_ = w.WriteField("message", string(m))
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="filedata"; filename=%q`, msg.File.Name)}
	h["Content-Type"] = []string{msg.File.MediaType}
	part, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	_, _ = part.Write(msg.File.Content)
	if err := w.Close(); err != nil {
		return err
	}
	return p.call(ctx, http.MethodPost, path, cfg.Secret, nil, &buf, w.FormDataContentType(), out)
}

// sendError sorts a Send API refusal. Rate limits wait; the 24-hour window
// (#10), an unavailable person (#551) and other 4xx are permanent.
func sendError(err error) error {
	var g *graphError
	if !errors.As(err, &g) {
		return err
	}
	switch {
	case g.Code == 4 || g.Code == 17 || g.Code == 32 || g.Code == 613:
		return &channels.RetryAfterError{After: time.Minute, Reason: g.Message}
	case g.Status >= 500 || g.Code == 1 || g.Code == 2:
		return err
	case g.Code == 10 || g.Subcode == 2018278:
		return &channels.PermanentError{Reason: "Messenger: outside the 24-hour reply window: " + g.Message}
	}
	return &channels.PermanentError{Reason: "Messenger: " + g.Message}
}

// Profile implements channels.Provider through Graph. Graph may refuse for a
// valid PSID; the chat then keeps the fallback name.
func (p *Provider) Profile(ctx context.Context, cfg channels.Config, psid string) (channels.Profile, error) {
	var prof struct {
		FirstName  string `json:"first_name"`
		LastName   string `json:"last_name"`
		ProfilePic string `json:"profile_pic"`
	}
	err := p.call(ctx, http.MethodGet, "/"+url.PathEscape(psid), cfg.Secret, url.Values{"fields": {"first_name,last_name,profile_pic"}}, nil, "", &prof)
	var g *graphError
	if errors.As(err, &g) && g.Status < 500 {
		return channels.Profile{}, &channels.PermanentError{Reason: "Graph refused the profile: " + g.Message}
	}
	if err != nil {
		return channels.Profile{}, err
	}
	out := channels.Profile{Name: strings.TrimSpace(prof.FirstName + " " + prof.LastName)}
	if prof.ProfilePic != "" {
		out.Photo = &domain.AttachmentRef{Kind: domain.KindPhoto, URL: prof.ProfilePic}
	}
	return out, nil
}

// Attachment implements channels.Provider: a download from Meta's hosts only.
func (p *Provider) Attachment(ctx context.Context, _ channels.Config, ref domain.AttachmentRef) (channels.Downloaded, error) {
	if ref.URL == "" {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "the attachment has no URL"}
	}
	return p.fetcher.Get(ctx, ref.URL, nil)
}

// ReleaseThread implements channels.ThreadReleaser: pass_thread_control to the bot app.
func (p *Provider) ReleaseThread(ctx context.Context, cfg channels.Config, psid string) error {
	bot := cfg.Settings[SettingBotAppID]
	if bot == "" {
		return nil
	}
	err := p.postJSON(ctx, "/"+cfg.Settings[SettingPageID]+"/pass_thread_control", cfg.Secret, map[string]any{
		"recipient": map[string]string{"id": psid}, "target_app_id": bot, "metadata": "omnichat: chat closed"}, nil)
	var g *graphError
	if errors.As(err, &g) && g.Status < 500 {
		return &channels.PermanentError{Reason: "pass_thread_control refused: " + g.Message}
	}
	return err
}
