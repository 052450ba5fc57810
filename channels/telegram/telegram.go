// Package telegram is the Telegram Bot API channel: a bot token per channel,
// a webhook registered with a secret token, text and media both ways.
package telegram

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
	"strconv"
	"strings"
	"time"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/download"
	"github.com/omnichat/omnichat/domain"
)

// Name is the provider name.
const Name = "telegram"

// SecretHeader carries the webhook's secret token.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// DefaultBaseURL is the Bot API.
const DefaultBaseURL = "https://api.telegram.org"

// pace keeps to about one message per second per chat, as Telegram asks.
const pace = time.Second

// allowedUpdates are the update types omnichat handles.
var allowedUpdates = []string{"message", "edited_message", "callback_query", "my_chat_member"}

var tokenPattern = regexp.MustCompile(`^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$`)

// Provider implements channels.Provider for Telegram.
type Provider struct {
	base    string
	client  *http.Client
	fetcher *download.Fetcher
}

// New builds the provider for a Bot API base URL (DefaultBaseURL, or a fake in tests).
func New(baseURL string, client *http.Client) (*Provider, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("telegram base URL %q: %w", baseURL, channels.ErrInvalidConfig)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Provider{base: strings.TrimRight(baseURL, "/"), client: client,
		fetcher: download.New(download.Policy{ConfiguredHosts: []string{u.Host}})}, nil
}

// Name implements channels.Provider.
func (p *Provider) Name() string { return Name }

// WebhookSecret is the secret_token of a channel's webhook: derived from the
// bot token and the channel, so it is never stored and never leaves omnichat.
func WebhookSecret(cfg channels.Config) string {
	mac := hmac.New(sha256.New, []byte(cfg.Secret))
	mac.Write([]byte("omnichat-webhook:" + cfg.ID))
	return hex.EncodeToString(mac.Sum(nil))
}

// Validate implements channels.Provider: the secret is the bot token.
func (p *Provider) Validate(cfg channels.Config) error {
	if !tokenPattern.MatchString(cfg.Secret) {
		return fmt.Errorf("secret must be a bot token such as 123456:ABC-DEF...: %w", channels.ErrInvalidConfig)
	}
	for k := range cfg.Settings {
		return fmt.Errorf("unknown setting %q (a Telegram channel has none): %w", k, channels.ErrInvalidConfig)
	}
	return nil
}

// apiError is a Bot API refusal.
type apiError struct {
	Code        int
	Description string
	RetryAfter  int
}

func (e *apiError) Error() string { return fmt.Sprintf("telegram: %d %s", e.Code, e.Description) }

// call invokes a Bot API method with a JSON body and decodes its result.
func (p *Provider) call(ctx context.Context, token, method string, body any, result any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/bot"+token+"/"+method, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return p.do(req, result)
}

func (p *Provider) do(req *http.Request, result any) error {
	resp, err := p.client.Do(req)
	if err != nil {
		// The URL holds the bot token: never let it reach a log.
		return fmt.Errorf("telegram %s: %w", methodOf(req.URL.Path), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: read answer: %w", methodOf(req.URL.Path), err)
	}
	var env struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("telegram %s: answered %d with no JSON", methodOf(req.URL.Path), resp.StatusCode)
	}
	if !env.OK {
		code := env.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &apiError{Code: code, Description: env.Description, RetryAfter: env.Parameters.RetryAfter}
	}
	if result != nil {
		if err := json.Unmarshal(env.Result, result); err != nil {
			return &resultError{method: methodOf(req.URL.Path), err: err}
		}
	}
	return nil
}

// resultError: Telegram said ok, but its result could not be read.
type resultError struct {
	method string
	err    error
}

func (e *resultError) Error() string {
	return "telegram " + e.method + ": unreadable result: " + e.err.Error()
}

func methodOf(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// Register implements channels.Provider: getMe checks the token, setWebhook
// installs this channel's webhook with its secret token.
func (p *Provider) Register(ctx context.Context, cfg channels.Config) error {
	var me User
	if err := p.call(ctx, cfg.Secret, "getMe", struct{}{}, &me); err != nil {
		var api *apiError
		if errors.As(err, &api) && (api.Code == 401 || api.Code == 404) {
			return fmt.Errorf("the bot token was refused by Telegram (%s): %w", api.Description, channels.ErrInvalidConfig)
		}
		return err
	}
	if cfg.WebhookURL == "" {
		return fmt.Errorf("the SiteUrl system setting is required to register a Telegram webhook: %w", channels.ErrInvalidConfig)
	}
	return p.call(ctx, cfg.Secret, "setWebhook", map[string]any{
		"url": cfg.WebhookURL, "secret_token": WebhookSecret(cfg), "allowed_updates": allowedUpdates,
	}, nil)
}

// Unregister implements channels.Provider.
func (p *Provider) Unregister(ctx context.Context, cfg channels.Config) error {
	return p.call(ctx, cfg.Secret, "deleteWebhook", struct{}{}, nil)
}

// VerifyWebhook implements channels.Provider.
func (p *Provider) VerifyWebhook(cfg channels.Config, header http.Header, _ []byte) error {
	got := header.Get(SecretHeader)
	if got == "" || !hmac.Equal([]byte(got), []byte(WebhookSecret(cfg))) {
		return channels.ErrBadSignature
	}
	return nil
}

// ParseWebhook implements channels.Provider. A pressed button becomes a
// message of its conversation; the customer blocking the bot (or allowing it
// again) an event. Updates of other types and messages from other bots yield
// nothing, so Telegram gets its 200.
func (p *Provider) ParseWebhook(_ channels.Config, body []byte) ([]domain.InboundMessage, error) {
	var u Update
	if err := json.Unmarshal(body, &u); err != nil {
		return nil, fmt.Errorf("%w: %v", channels.ErrBadPayload, err)
	}
	switch {
	case u.CallbackQuery != nil:
		return buttonPressed(u.CallbackQuery), nil
	case u.MyChatMember != nil:
		return membershipChanged(u.UpdateID, u.MyChatMember), nil
	}
	m, edited := u.Message, false
	if m == nil {
		m, edited = u.EditedMessage, true
	}
	if m == nil || m.From == nil || m.From.IsBot || m.Chat.ID == 0 {
		return nil, nil
	}
	um := domain.InboundMessage{
		ConversationID: strconv.FormatInt(m.Chat.ID, 10),
		ExternalID:     strconv.FormatInt(m.Chat.ID, 10) + ":" + strconv.FormatInt(m.MessageID, 10),
		SenderID:       strconv.FormatInt(m.From.ID, 10),
		SenderName:     displayName(m.From),
		Edited:         edited,
		SentAt:         time.Unix(m.Date, 0).UTC(),
	}
	fillContent(&um, m)
	return []domain.InboundMessage{um}, nil
}

// buttonPressed turns a press of a button under one of the bot's messages
// into the customer's message "[button] <its label>". Its ReplyToken is the
// query to answer, so the customer's button stops spinning.
func buttonPressed(q *CallbackQuery) []domain.InboundMessage {
	if q.Message == nil || q.Message.Chat.ID == 0 || q.From.IsBot || q.ID == "" {
		return nil // a button of an inline-mode message: no conversation of ours
	}
	label := q.Data
	if q.Message.ReplyMarkup != nil {
		for _, row := range q.Message.ReplyMarkup.InlineKeyboard {
			for _, b := range row {
				if b.CallbackData == q.Data && b.Text != "" {
					label = b.Text
				}
			}
		}
	}
	return []domain.InboundMessage{{
		ConversationID: strconv.FormatInt(q.Message.Chat.ID, 10),
		ExternalID:     "callback:" + q.ID,
		SenderID:       strconv.FormatInt(q.From.ID, 10),
		SenderName:     displayName(&q.From),
		Kind:           domain.KindText,
		Text:           "[button] " + label,
		ReplyToken:     q.ID,
	}}
}

// membershipChanged reports a private chat's customer blocking the bot
// ("kicked") or allowing it again ("member").
func membershipChanged(updateID int64, c *ChatMemberUpdated) []domain.InboundMessage {
	if c.Chat.Type != "private" || c.Chat.ID == 0 {
		return nil
	}
	event := ""
	switch c.NewChatMember.Status {
	case "kicked":
		event = domain.EventBlocked
	case "member":
		event = domain.EventUnblocked
	default:
		return nil
	}
	return []domain.InboundMessage{{
		ConversationID: strconv.FormatInt(c.Chat.ID, 10),
		ExternalID:     "member:" + strconv.FormatInt(updateID, 10),
		SenderID:       strconv.FormatInt(c.From.ID, 10),
		SenderName:     displayName(&c.From),
		SentAt:         time.Unix(c.Date, 0).UTC(),
		Event:          event,
	}}
}

// Acknowledge implements channels.Acknowledger: it answers a pressed button's
// callback query, which stops the spinner on the customer's button.
func (p *Provider) Acknowledge(ctx context.Context, cfg channels.Config, m domain.InboundMessage) error {
	return p.call(ctx, cfg.Secret, "answerCallbackQuery", map[string]any{"callback_query_id": m.ReplyToken}, nil)
}

func displayName(u *User) string {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	switch {
	case name != "":
		return name
	case u.Username != "":
		return "@" + u.Username
	}
	return "Telegram user " + strconv.FormatInt(u.ID, 10)
}

// fillContent maps the message's content into kind, text and attachments.
func fillContent(um *domain.InboundMessage, m *Message) {
	file := func(kind string, f *File) {
		um.Kind, um.Text = kind, m.Caption
		um.Attachments = []domain.AttachmentRef{{Kind: kind, RemoteID: f.FileID, Name: f.FileName, MediaType: f.MimeType, Size: f.FileSize}}
	}
	switch {
	case m.Text != "":
		um.Kind, um.Text = domain.KindText, m.Text
	case len(m.Photo) > 0:
		largest := m.Photo[0]
		for _, ps := range m.Photo[1:] {
			if ps.Width*ps.Height > largest.Width*largest.Height {
				largest = ps
			}
		}
		um.Kind, um.Text = domain.KindPhoto, m.Caption
		um.Attachments = []domain.AttachmentRef{{Kind: domain.KindPhoto, RemoteID: largest.FileID, Size: largest.FileSize}}
	case m.Document != nil:
		file(domain.KindDocument, m.Document)
	case m.Voice != nil:
		file(domain.KindVoice, m.Voice)
	case m.Audio != nil:
		file(domain.KindAudio, m.Audio)
	case m.Video != nil:
		file(domain.KindVideo, m.Video)
	case m.Sticker != nil:
		um.Kind, um.Text = domain.KindSticker, strings.TrimSpace("[sticker] "+m.Sticker.Emoji)
	case m.Location != nil:
		um.Kind = domain.KindLocation
		um.Text = fmt.Sprintf("[location] %.6f, %.6f", m.Location.Latitude, m.Location.Longitude)
	case m.Contact != nil:
		um.Kind, um.Text = domain.KindUnsupported, "[contact] "+m.Contact.FirstName+" "+m.Contact.PhoneNumber
	case m.Poll != nil:
		um.Kind, um.Text = domain.KindUnsupported, "[poll] "+m.Poll.Question
	default:
		um.Kind, um.Text = domain.KindUnsupported, "[a message of a kind omnichat does not show]"
	}
}

// sentMessage is the part of a sent message omnichat reads.
type sentMessage struct {
	MessageID int64 `json:"message_id"`
}

// Send implements channels.Provider. Once Telegram answers ok the message is
// sent: an answer omnichat cannot read must not make it send again.
func (p *Provider) Send(ctx context.Context, cfg channels.Config, msg channels.Outbound) (channels.SendResult, error) {
	var sent sentMessage
	var err error
	if msg.File != nil {
		err = p.sendFile(ctx, cfg, msg, &sent)
	} else {
		err = p.call(ctx, cfg.Secret, "sendMessage", map[string]any{"chat_id": msg.ConversationID, "text": msg.Text}, &sent)
	}
	var unreadable *resultError
	if errors.As(err, &unreadable) {
		return channels.SendResult{Pause: pace}, nil
	}
	if err != nil {
		return channels.SendResult{}, sendError(err)
	}
	return channels.SendResult{ExternalID: msg.ConversationID + ":" + strconv.FormatInt(sent.MessageID, 10), Pause: pace}, nil
}

// sendError sorts a refusal: throttling waits, a blocked bot or a missing chat
// is permanent, a server error is retried.
func sendError(err error) error {
	var api *apiError
	if !errors.As(err, &api) {
		return err
	}
	switch {
	case api.Code == 429:
		after := time.Duration(api.RetryAfter) * time.Second
		if after <= 0 {
			after = time.Second
		}
		return &channels.RetryAfterError{After: after, Reason: api.Description}
	case api.Code >= 400 && api.Code < 500:
		return &channels.PermanentError{Reason: "Telegram: " + api.Description}
	}
	return err
}

// sendFile uploads an agent's attachment with sendPhoto or sendDocument.
func (p *Provider) sendFile(ctx context.Context, cfg channels.Config, msg channels.Outbound, sent *sentMessage) error {
	method, field := "sendDocument", "document"
	if strings.HasPrefix(msg.File.MediaType, "image/") {
		method, field = "sendPhoto", "photo"
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("chat_id", msg.ConversationID)
	if msg.Text != "" {
		_ = w.WriteField("caption", msg.Text)
	}
	part, err := w.CreateFormFile(field, msg.File.Name)
	if err != nil {
		return err
	}
	_, _ = part.Write(msg.File.Content)
	if err := w.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/bot"+cfg.Secret+"/"+method, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return p.do(req, sent)
}

// Profile implements channels.Provider: the name comes with each message; the
// photo is the user's first profile photo, largest size.
func (p *Provider) Profile(ctx context.Context, cfg channels.Config, userID string) (channels.Profile, error) {
	var photos UserProfilePhotos
	if err := p.call(ctx, cfg.Secret, "getUserProfilePhotos", map[string]any{"user_id": userID, "limit": 1}, &photos); err != nil {
		return channels.Profile{}, err
	}
	if len(photos.Photos) == 0 || len(photos.Photos[0]) == 0 {
		return channels.Profile{}, nil
	}
	sizes := photos.Photos[0]
	largest := sizes[len(sizes)-1]
	return channels.Profile{Photo: &domain.AttachmentRef{Kind: domain.KindPhoto, RemoteID: largest.FileID, Size: largest.FileSize}}, nil
}

// Attachment implements channels.Provider: getFile, then a download from the
// Bot API's file host. The download URL holds the bot token; it is used here
// and nowhere else.
func (p *Provider) Attachment(ctx context.Context, cfg channels.Config, ref domain.AttachmentRef) (channels.Downloaded, error) {
	if ref.Size > download.MaxBytes {
		return channels.Downloaded{}, &channels.PermanentError{Reason: fmt.Sprintf("attachment of %d bytes is over the 20 MB limit", ref.Size)}
	}
	var f File
	if err := p.call(ctx, cfg.Secret, "getFile", map[string]any{"file_id": ref.RemoteID}, &f); err != nil {
		var api *apiError
		if errors.As(err, &api) && api.Code >= 400 && api.Code < 500 {
			return channels.Downloaded{}, &channels.PermanentError{Reason: "Telegram: " + api.Description}
		}
		return channels.Downloaded{}, err
	}
	if f.FileSize > download.MaxBytes {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "attachment is over the 20 MB limit"}
	}
	got, err := p.fetcher.Get(ctx, p.base+"/file/bot"+cfg.Secret+"/"+f.FilePath, nil)
	if err != nil {
		var perm *channels.PermanentError
		if errors.As(err, &perm) {
			return got, err
		}
		return got, errors.New("telegram file download failed") // without the URL: it holds the token
	}
	if got.MediaType == "application/octet-stream" && ref.MediaType != "" {
		got.MediaType = ref.MediaType
	}
	return got, nil
}
