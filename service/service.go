// Package service is omnichat's domain layer, between the API (and the
// workflows' activities) and the store. There is one type per domain: chats
// and messages, agents, queues, channels, users (with roles and tokens),
// settings, routing, and the inbound webhooks. Each owns its rules and is the
// only writer of its tables; a change and what it causes (the wake-up of
// routing) are written in one transaction. What happens to a chat over time
// (timers, agents' commands) belongs to its Temporal workflow, reached through
// ChatRuntime.
package service

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/nocode"
	"github.com/omnichat/omnichat/telemetry"
)

// The rows services hand out, named here so callers need not import models.
type (
	User        = models.User
	Role        = models.Role
	APIToken    = models.APIToken
	Queue       = models.Queue
	QueueAgents = models.QueueAgents
	Channel     = models.Channel
	ChatRow     = models.ChatRow
	ChatFilter  = models.ChatFilter
	Message     = models.Message
	Attachment  = models.Attachment
	Contact     = models.Contact
	SettingDef  = models.SettingDef
	SettingFile = models.SettingFile
	Offer       = models.Offer
)

// ChatRuntime is what services ask of the chat workflows. Package chatcmd
// implements it with Temporal; a command the workflow refuses comes back as a
// domain error, and a runtime that does not answer as domain.ErrUnavailable.
type ChatRuntime interface {
	// DeliverInbound hands a customer's message to its conversation's chat,
	// opening one if none is open; nil means the message is durable.
	DeliverInbound(ctx context.Context, channelID, conversationID string, m domain.InboundMessage) error
	Accept(ctx context.Context, workflowID, agentID string) error
	Send(ctx context.Context, workflowID string, cmd SendCommand) (messageID string, err error)
	Close(ctx context.Context, workflowID, agentID string) error
	Transfer(ctx context.Context, workflowID string, cmd TransferCommand) error
	// NotifyOffer tells a chat's workflow the dispatcher offered it.
	NotifyOffer(ctx context.Context, o Offer, acceptTimeout time.Duration) error
}

// SendCommand is an agent's reply as the chat workflow takes it.
type SendCommand struct {
	AgentID        string
	Text           string
	IdempotencyKey string
	AttachmentID   string
}

// TransferCommand moves a chat to a queue or to an agent (exactly one).
type TransferCommand struct {
	AgentID   string
	ToQueueID string
	ToAgentID string
}

// FileStorage keeps attachments' content. PostgreSQL (models.Store) is the
// one implementation; a file or object store can take its place.
type FileStorage interface {
	StoreAttachmentContent(ctx context.Context, id uuid.UUID, mediaType string, content []byte) error
	AttachmentContent(ctx context.Context, id uuid.UUID) (mediaType string, content []byte, err error)
}

// Deps are what the services are built from.
type Deps struct {
	Store     *models.Store
	Files     FileStorage // nil: Store
	Providers *channels.Registry
	Runtime   ChatRuntime
	// Notifier tells chat workflows about messages the API stored (nil:
	// notices stay queued for a process that has one).
	Notifier ChatNotifier
	// Actions starts chat actions' runs.
	Actions ActionRuntime
	// TemporalHealth checks the Temporal frontend answers.
	TemporalHealth func(ctx context.Context) error
	Logger         *slog.Logger
	// RoutingSafetyInterval is how often the dispatcher passes with no
	// wake-up (0: every 5 s).
	RoutingSafetyInterval time.Duration
	// EventRetention is how long the event log keeps events (0: 24 h).
	EventRetention time.Duration
	// EventStreamsPerUser bounds one user's event streams per process (0: 8).
	EventStreamsPerUser int
	// SessionTTL is how long a panel session lasts (0: 12 h).
	SessionTTL time.Duration
	// Metrics records what the services do (nil: nothing is recorded).
	Metrics *telemetry.Metrics
}

// Services are every domain service, built once by the composition root.
type Services struct {
	Users    *Users
	Agents   *Agents
	Queues   *Queues
	Channels *Channels
	Settings *Settings
	Chats    *Chats
	Inbound  *Inbound
	Notices  *Notices
	Routing  *Routing
	Health   *Health
	Actions  *Actions
	Cases    *Cases
	Events   *Events
	Sessions *Sessions
}

// New builds the services.
func New(d Deps) *Services {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Files == nil {
		d.Files = d.Store
	}
	channelsSvc := &Channels{store: d.Store, providers: d.Providers, logger: d.Logger}
	chats := &Chats{store: d.Store, files: d.Files, runtime: d.Runtime, channels: channelsSvc, metrics: d.Metrics}
	cases := &Cases{store: d.Store}
	actions := &Actions{store: d.Store, runtime: d.Actions, chats: chats, cases: cases, logger: d.Logger}
	actions.caller = &nocode.Caller{AllowList: actions.allowList}
	notices := newNotices(d.Store, d.Notifier, d.Logger, d.Metrics)
	events := &Events{store: d.Store, logger: d.Logger, Retention: cmp.Or(d.EventRetention, 24*time.Hour),
		PerUser: cmp.Or(d.EventStreamsPerUser, 8)}
	return &Services{
		Notices:  notices,
		Actions:  actions,
		Cases:    cases,
		Users:    &Users{store: d.Store},
		Agents:   &Agents{store: d.Store},
		Queues:   &Queues{store: d.Store},
		Channels: channelsSvc,
		Settings: &Settings{store: d.Store},
		Chats:    chats,
		Inbound:  &Inbound{channels: channelsSvc, chats: chats, runtime: d.Runtime, notices: notices, events: events, logger: d.Logger},
		Routing: &Routing{store: d.Store, runtime: d.Runtime, logger: d.Logger, safety: cmp.Or(d.RoutingSafetyInterval, safetyInterval),
			metrics: d.Metrics},
		Health:   &Health{store: d.Store, temporal: d.TemporalHealth},
		Events:   events,
		Sessions: newSessions(d.Store, cmp.Or(d.SessionTTL, 12*time.Hour)),
	}
}

// Health reports whether omnichat's dependencies answer.
type Health struct {
	store    *models.Store
	temporal func(ctx context.Context) error
}

// Check asks PostgreSQL and Temporal; a nil error means the dependency answers.
func (h *Health) Check(ctx context.Context) map[string]error {
	return map[string]error{"postgres": h.store.Ping(ctx), "temporal": h.temporal(ctx)}
}

// wakeRoutingAfter runs change in a transaction and, when it reports that
// capacity may have appeared or a chat may wait, wakes routing in the same
// transaction: the wake-up is exactly as durable as the change.
func wakeRoutingAfter(ctx context.Context, store *models.Store, change func(tx *models.Store) (wake bool, err error)) error {
	return store.Tx(ctx, func(tx *models.Store) error {
		wake, err := change(tx)
		if err != nil || !wake {
			return err
		}
		return tx.WakeRouting(ctx)
	})
}

// setIf records a patch's field in cols when the patch sets it.
func setIf[T any](cols map[string]any, column string, v *T) {
	if v != nil {
		cols[column] = *v
	}
}
