// Package workflows holds omnichat's Temporal workflows. This file is their
// contract: everything a client needs to start, signal, update or query them.
// Payload types are recorded in histories: their JSON field names stay as
// they are, and a field is only ever added.
package workflows

import (
	"time"

	"github.com/omnichat/omnichat/domain"
)

// DefaultTaskQueue is where chat workflows and their activities run unless
// OMNICHAT_TASK_QUEUE says otherwise.
const DefaultTaskQueue = "omnichat"

// Workflow type names.
const (
	ChatWorkflowName = "ChatWorkflow"
	// RoutingWorkflowName supervises the dispatcher: one per task queue.
	RoutingWorkflowName = "RoutingWorkflow"
	// DispatchWorkflowName is the dispatcher of earlier releases, kept so
	// executions they started can finish.
	DispatchWorkflowName = "DispatchWorkflow"
)

// Signal, update and query names of ChatWorkflow.
const (
	// SignalInbound delivers a customer's message (domain.InboundMessage).
	SignalInbound = "inbound"
	// SignalOffer tells the chat it was offered to an agent (Offer).
	SignalOffer = "offer"
	// SignalNotice tells the chat about a message the API stored in
	// Postgres without it (Notice).
	SignalNotice = "notice"

	UpdateAccept   = "accept"
	UpdateSend     = "send"
	UpdateClose    = "close"
	UpdateTransfer = "transfer"

	QueryState = "state"
)

// SignalKick asked the DispatchWorkflow of earlier releases for a pass.
const SignalKick = "kick"

// Timer summaries, shown in the Temporal UI and read by tests that count
// which timers fired.
const (
	TimerAccept     = "accept"
	TimerCompletion = "completion"
)

// MetricTimerLateness is the histogram, through the SDK's metrics handler,
// of how late a chat's accept or completion timer is handled after its
// deadline, labelled timer=accept|completion; Prometheus shows it as
// omnichat_timer_lateness_seconds.
const MetricTimerLateness = "omnichat_timer_lateness"

// ChatWorkflowID is the one workflow ID of a customer conversation: at most
// one open chat per conversation; a closed chat's next message starts a new run.
func ChatWorkflowID(channelID, conversationID string) string {
	return "chat/" + channelID + "/" + conversationID
}

// RoutingWorkflowID is the ID of the dispatcher's workflow of a task queue.
func RoutingWorkflowID(taskQueue string) string {
	return "routing/" + taskQueue
}

// ChatInput starts or continues a chat workflow.
type ChatInput struct {
	ChannelID      string
	ConversationID string
	// State is set when the workflow continues as new with the same chat.
	State *ChatState `json:",omitempty"`
	// Pending are inbound messages carried over (a message that arrived while
	// the previous chat closed, or signals drained before continue-as-new).
	Pending []domain.InboundMessage `json:",omitempty"`
	// ContinueAsNewAfter overrides how many inbound messages a run handles
	// before it continues as new (0: only when Temporal suggests it).
	ContinueAsNewAfter int `json:",omitempty"`
}

// Offer says a chat was offered to an agent who has AcceptTimeout to accept,
// counted from OfferedAt (when routing recorded it; zero: when the chat
// learns of it).
type Offer struct {
	ChatID        string
	AgentID       string
	AcceptTimeout time.Duration
	OfferedAt     time.Time `json:",omitzero"`
}

// Notice kinds.
const (
	// NoticeAnswered: the customer wrote while the chat was in progress; the
	// chat checks Postgres and disarms its completion timer.
	NoticeAnswered = "answered"
	// NoticeAttachment: a file to download; Ref is the attachment's ID.
	NoticeAttachment = "attachment"
)

// Notice is what a chat learns about a message stored by the API.
type Notice struct {
	ChatID string
	Kind   string
	Ref    string `json:",omitempty"`
}

// ChatState is the whole state of a chat workflow; it survives continue-as-new.
type ChatState struct {
	ChatID            string
	ContactID         string
	QueueID           string
	RoutingRule       string
	CompletionTimeout time.Duration
	// Status is empty until the first message opened the chat.
	Status        string
	AgentID       string
	OfferDeadline time.Time
	// OfferedAt is when routing recorded the offer the accept timer runs
	// for, read only while Status is offered (each offer sets it; zero when
	// the offer did not say, or in a state carried over by an earlier
	// release's continue-as-new): its expiry takes back that offer and no
	// later one.
	OfferedAt time.Time `json:",omitzero"`
	// CompletionDeadline is zero while the completion timer is disarmed.
	CompletionDeadline time.Time
	CloseReason        string
	// Outbox holds IDs of agent messages not yet handed to the provider, in order.
	Outbox []string
	// LastSentAt and Pause pace deliveries as the provider asks.
	LastSentAt time.Time
	Pause      time.Duration
	// Fetches are background downloads still to do: attachment IDs, and
	// "profile:<contactID>".
	Fetches []string
	// ReleasesThread: on close, hand the conversation back to the channel's bot app.
	ReleasesThread bool
	// Handled counts inbound messages handled in this run.
	Handled int
	// GateSeq is the number of the last message signalled to the
	// conversation that the chat received; Direct: the API stores the
	// chat's messages (the gate is open).
	GateSeq int64 `json:",omitempty"`
	Direct  bool  `json:",omitempty"`
}

// AcceptRequest is the accept update's argument.
type AcceptRequest struct {
	AgentID string
}

// SendRequest is the send update's argument.
type SendRequest struct {
	AgentID        string
	Text           string
	IdempotencyKey string
	// AttachmentID is a file the agent uploaded to send, Text its caption.
	AttachmentID string `json:",omitempty"`
}

// SendResult is the send update's answer.
type SendResult struct {
	MessageID string
	Status    string
}

// CloseRequest is the close update's argument.
type CloseRequest struct {
	AgentID string
}

// TransferRequest is the transfer update's argument: exactly one of ToQueueID and ToAgentID.
type TransferRequest struct {
	AgentID   string
	ToQueueID string
	ToAgentID string
}

// ChatResult is what accept, close and transfer answer.
type ChatResult struct {
	ChatID  string
	Status  string
	AgentID string
	QueueID string
}

// Chat actions. A run is carried out by ActionRunWorkflow on omnichat's task
// queue, apart from the chat's workflow, so it outlives the chat and its
// continue-as-new. It starts the action's own workflow (any worker, any SDK)
// as an abandoned child with ActionInput.
const (
	ActionRunWorkflowName = "ActionRunWorkflow"
	// CreateCaseFromChatName is the built-in "Create case" action.
	CreateCaseFromChatName = domain.BuiltinCreateCase
	// NoCodeActionName runs a no-code definition.
	NoCodeActionName = domain.NoCodeWorkflow
)

// ActionRunWorkflowID is the workflow ID of a run: one workflow per run.
func ActionRunWorkflowID(runID string) string { return "action-run/" + runID }

// ActionWorkflowID is the workflow ID of a run's action workflow: a retry
// never starts a second one. Built-in and no-code workflows read their run
// from it.
func ActionWorkflowID(runID string) string { return "action/" + runID }

// ActionInput is the one argument of every action workflow. Its JSON field
// names are fixed, so a workflow in any SDK binds it without omnichat's types.
type ActionInput struct {
	ChatID    string `json:"ChatId"`
	ContactID string `json:"ContactId"`
	ActionID  string `json:"ActionId"`
	AgentID   string `json:"AgentId"`
	QueueID   string `json:"QueueId"`
	ChannelID string `json:"ChannelId"`
}

// ActionRunInput starts ActionRunWorkflow.
type ActionRunInput struct {
	RunID        string
	WorkflowType string
	TaskQueue    string
	Input        ActionInput
	// StartTimeout is how long the action's workflow has to be picked up by a worker.
	StartTimeout time.Duration
}
