// Package activities holds every side effect the workflows need: database
// writes, routing claims, provider sends. Each activity is idempotent.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/dispatch"
	"github.com/omnichat/omnichat/models"
)

// Error types; the workflows and the API read them (they match workflows' contract).
const (
	errConflict      = "Conflict"
	errNotFound      = "NotFound"
	errInvalid       = "Invalid"
	errPermanentSend = "PermanentSendFailure"
)

// Kicker asks the dispatcher to run.
type Kicker interface {
	Kick(ctx context.Context) error
}

// FileStorage keeps attachments' content. PostgreSQL (models.Store) is the
// one implementation; a file or object store can take its place.
type FileStorage interface {
	StoreAttachmentContent(ctx context.Context, id uuid.UUID, mediaType string, content []byte) error
	AttachmentContent(ctx context.Context, id uuid.UUID) (mediaType string, content []byte, err error)
}

// Activities holds the dependencies of every activity.
type Activities struct {
	Store      *models.Store
	Files      FileStorage
	Providers  *channels.Registry
	Dispatcher *dispatch.Dispatcher
	Kicker     Kicker
	Logger     *slog.Logger
}

// domainError turns a domain error into a non-retryable application error the
// workflow and the API understand; other errors stay retryable.
func domainError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, models.ErrConflict):
		return temporal.NewNonRetryableApplicationError(err.Error(), errConflict, nil)
	case errors.Is(err, models.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), errNotFound, nil)
	case errors.Is(err, models.ErrInvalid):
		return temporal.NewNonRetryableApplicationError(err.Error(), errInvalid, nil)
	}
	return err
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s %q is not a UUID", field, s), errInvalid, nil)
	}
	return id, nil
}

// IngestRequest is one inbound message for a chat.
type IngestRequest struct {
	ChatID         string
	OpenChat       bool
	WorkflowID     string
	ChannelID      string
	ConversationID string
	ExternalID     string
	SenderID       string
	SenderName     string
	Text           string
	Kind           string
	SentAt         time.Time
	Edited         bool
	Bot            bool
	Attachments    []AttachmentRef
}

// AttachmentRef is a file of an inbound message, as the provider names it.
type AttachmentRef struct {
	Kind, RemoteID, URL, Name, MediaType string
	Size                                 int64
}

// IngestResult tells the workflow about the message and its chat.
type IngestResult struct {
	Duplicate bool
	Stored    bool
	Edited    bool
	// NewContact: the contact is new and its provider has profiles to fetch.
	NewContact        bool
	ChatID            string
	ContactID         string
	QueueID           string
	RoutingRule       string
	CompletionTimeout time.Duration
	// ReleasesThread: closing the chat hands the conversation back to a bot app.
	ReleasesThread bool
	// Attachments to fetch.
	Attachments []string
}

// Ingest stores an inbound message once, opening the chat if needed.
func (a *Activities) Ingest(ctx context.Context, r IngestRequest) (IngestResult, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return IngestResult{}, err
	}
	channelID, err := parseID("channel", r.ChannelID)
	if err != nil {
		return IngestResult{}, err
	}
	in := models.IngestInput{ChatID: chatID, OpenChat: r.OpenChat, WorkflowID: r.WorkflowID,
		ChannelID: channelID, ConversationID: r.ConversationID, SenderID: r.SenderID, SenderName: r.SenderName,
		ExternalMessageID: r.ExternalID, Text: r.Text, Kind: r.Kind, SentAt: r.SentAt, Edited: r.Edited, Bot: r.Bot}
	for _, at := range r.Attachments {
		in.Attachments = append(in.Attachments, models.AttachmentInput{Kind: at.Kind, RemoteID: at.RemoteID, URL: at.URL,
			Name: at.Name, MediaType: at.MediaType, Size: at.Size})
	}
	res, err := a.Store.Ingest(ctx, in)
	if err != nil {
		return IngestResult{}, domainError(err)
	}
	out := IngestResult{Duplicate: res.Duplicate, Stored: res.Stored, Edited: res.Edited}
	for _, id := range res.Attachments {
		out.Attachments = append(out.Attachments, id.String())
	}
	if !res.Duplicate && res.Chat.ChatID != uuid.Nil {
		out.ChatID = res.Chat.ChatID.String()
		out.ContactID = res.Chat.ContactID.String()
		out.QueueID = res.Chat.QueueID.String()
		out.RoutingRule = res.Chat.RoutingRule
		out.CompletionTimeout = res.Chat.CompletionTimeout
		if r.OpenChat {
			profiles, releases := a.channelTraits(ctx, channelID)
			out.NewContact = res.NewContact && profiles
			out.ReleasesThread = releases
		}
	}
	return out, nil
}

// channelProvider loads a channel and its provider; ok is false when this
// build does not serve the channel's provider.
func (a *Activities) channelProvider(ctx context.Context, channelID uuid.UUID) (*models.Channel, channels.Provider, bool, error) {
	ch, err := a.Store.GetChannel(ctx, channelID)
	if err != nil {
		return nil, nil, false, domainError(err)
	}
	p, ok := a.Providers.Get(ch.Provider)
	return ch, p, ok, nil
}

// channelTraits reports whether the channel's contacts have profiles to fetch
// and whether it hands conversations back to a bot when a chat closes.
func (a *Activities) channelTraits(ctx context.Context, channelID uuid.UUID) (profiles, releases bool) {
	ch, p, ok, err := a.channelProvider(ctx, channelID)
	if err != nil || !ok {
		return false, false
	}
	_, noProfiles := p.(channels.ProfileLess)
	r, ok := p.(interface {
		ReleasesThread(cfg channels.Config) bool
	})
	return !noProfiles, ok && r.ReleasesThread(ChannelConfig(ch))
}

// ChatAgent names a chat and an agent.
type ChatAgent struct {
	ChatID  string
	AgentID string
}

func (r ChatAgent) ids() (uuid.UUID, uuid.UUID, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	agentID, err := parseID("agent", r.AgentID)
	return chatID, agentID, err
}

// AcceptResult tells the chat whether the agent got it, and otherwise who holds it.
type AcceptResult struct {
	Accepted bool
	Status   string
	AgentID  string
}

// Accept claims the chat for the agent within their capacity.
func (a *Activities) Accept(ctx context.Context, r ChatAgent) (AcceptResult, error) {
	chatID, agentID, err := r.ids()
	if err != nil {
		return AcceptResult{}, err
	}
	out, err := a.Store.Accept(ctx, chatID, agentID)
	if err != nil {
		return AcceptResult{}, domainError(err)
	}
	res := AcceptResult{Accepted: out.Accepted, Status: out.Status}
	if out.AgentID != nil {
		res.AgentID = out.AgentID.String()
	}
	return res, nil
}

// ExpireOffer takes back an unaccepted offer and sets the agent Inactive.
func (a *Activities) ExpireOffer(ctx context.Context, r ChatAgent) (bool, error) {
	chatID, agentID, err := r.ids()
	if err != nil {
		return false, err
	}
	ok, err := a.Store.ExpireOffer(ctx, chatID, agentID)
	return ok, domainError(err)
}

// CloseRequest closes a chat.
type CloseRequest struct {
	ChatID string
	Reason string
}

// CloseChat records the close.
func (a *Activities) CloseChat(ctx context.Context, r CloseRequest) error {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return err
	}
	return domainError(a.Store.CloseChat(ctx, chatID, r.Reason))
}

// TransferToQueueRequest moves a chat to a queue.
type TransferToQueueRequest struct {
	ChatID  string
	QueueID string
}

// QueueInfo is what the chat learns about its new queue.
type QueueInfo struct {
	QueueID           string
	RoutingRule       string
	CompletionTimeout time.Duration
}

// TransferToQueue moves the chat, which then waits to be routed afresh.
func (a *Activities) TransferToQueue(ctx context.Context, r TransferToQueueRequest) (QueueInfo, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return QueueInfo{}, err
	}
	queueID, err := parseID("queue", r.QueueID)
	if err != nil {
		return QueueInfo{}, err
	}
	info, err := a.Store.TransferToQueue(ctx, chatID, queueID)
	if err != nil {
		return QueueInfo{}, domainError(err)
	}
	return QueueInfo{QueueID: info.QueueID.String(), RoutingRule: info.RoutingRule, CompletionTimeout: info.CompletionTimeout}, nil
}

// TransferToAgent hands the chat to another agent of its queue.
func (a *Activities) TransferToAgent(ctx context.Context, r ChatAgent) error {
	chatID, agentID, err := r.ids()
	if err != nil {
		return err
	}
	return domainError(a.Store.TransferToAgent(ctx, chatID, agentID))
}

// KickDispatch asks the dispatcher to offer waiting chats.
func (a *Activities) KickDispatch(ctx context.Context) error {
	return a.Kicker.Kick(ctx)
}

// pendingOffer is heartbeated so a retry re-delivers offers it already recorded.
type pendingOffer struct {
	Offers        []models.Offer
	AcceptTimeout time.Duration
}

// DispatchResult says what one dispatch pass did.
type DispatchResult struct {
	Offers int
	// More: the pass stopped at its size limit; another pass may offer more.
	More bool
}

// Dispatch offers waiting chats to free agents and notifies their workflows.
func (a *Activities) Dispatch(ctx context.Context) (DispatchResult, error) {
	if activity.HasHeartbeatDetails(ctx) {
		var p pendingOffer
		if err := activity.GetHeartbeatDetails(ctx, &p); err == nil && len(p.Offers) > 0 {
			if err := a.Dispatcher.Notify(ctx, p.Offers, p.AcceptTimeout); err != nil {
				return DispatchResult{}, err
			}
		}
	}
	offers, acceptTimeout, more, err := a.Dispatcher.Assign(ctx)
	if err != nil {
		return DispatchResult{}, err
	}
	activity.RecordHeartbeat(ctx, pendingOffer{Offers: offers, AcceptTimeout: acceptTimeout})
	if err := a.Dispatcher.Notify(ctx, offers, acceptTimeout); err != nil {
		return DispatchResult{}, err
	}
	activity.RecordHeartbeat(ctx, pendingOffer{})
	return DispatchResult{Offers: len(offers), More: more}, nil
}
