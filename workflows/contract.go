// Package workflows holds omnichat's Temporal workflows. This file is their
// contract: everything a client needs to start, signal, update or query them.
package workflows

import (
	"time"
)

// DefaultTaskQueue is where chat workflows and their activities run unless
// OMNICHAT_TASK_QUEUE says otherwise.
const DefaultTaskQueue = "omnichat"

// Workflow type names.
const (
	ChatWorkflowName     = "ChatWorkflow"
	DispatchWorkflowName = "DispatchWorkflow"
)

// Signal, update and query names of ChatWorkflow.
const (
	// SignalInbound delivers a customer's message (InboundMessage).
	SignalInbound = "inbound"
	// SignalOffer tells the chat it was offered to an agent (Offer).
	SignalOffer = "offer"

	UpdateAccept   = "accept"
	UpdateSend     = "send"
	UpdateClose    = "close"
	UpdateTransfer = "transfer"

	QueryState = "state"
)

// SignalKick asks DispatchWorkflow to look for waiting chats and free agents.
const SignalKick = "kick"

// Error types carried by update rejections and activity failures; the API maps each to one status.
const (
	ErrTypeConflict  = "Conflict"
	ErrTypeForbidden = "Forbidden"
	ErrTypeNotFound  = "NotFound"
	ErrTypeInvalid   = "Invalid"
	// ErrTypePermanentSend marks a send the provider refused for good.
	ErrTypePermanentSend = "PermanentSendFailure"
)

// Chat statuses (the same words as the chats table) and routing rules.
const (
	StatusBot        = "bot"
	StatusWaiting    = "waiting"
	StatusOffered    = "offered"
	StatusInProgress = "in_progress"
	StatusClosed     = "closed"

	RuleAllAgents      = "all_agents"
	RuleAvailableAgent = "available_agent"
)

// Close reasons.
const (
	CloseByAgent = "agent"
	CloseTimeout = "timeout"
	CloseByBot   = "bot"
)

// ChatWorkflowID is the one workflow ID of a customer conversation: at most
// one open chat per conversation; a closed chat's next message starts a new run.
func ChatWorkflowID(channelID, conversationID string) string {
	return "chat/" + channelID + "/" + conversationID
}

// DispatchWorkflowID is the ID of the routing dispatcher of a task queue.
func DispatchWorkflowID(taskQueue string) string {
	return "dispatch/" + taskQueue
}

// ChatInput starts or continues a chat workflow.
type ChatInput struct {
	ChannelID      string
	ConversationID string
	// State is set when the workflow continues as new with the same chat.
	State *ChatState `json:",omitempty"`
	// Pending are inbound messages carried over (a message that arrived while
	// the previous chat closed, or signals drained before continue-as-new).
	Pending []InboundMessage `json:",omitempty"`
	// ContinueAsNewAfter overrides how many inbound messages a run handles
	// before it continues as new (0: only when Temporal suggests it).
	ContinueAsNewAfter int `json:",omitempty"`
}

// InboundMessage is a customer's message, or a conversation event, as the webhook received it.
type InboundMessage struct {
	ExternalID  string
	SenderID    string
	SenderName  string
	Text        string
	Kind        string `json:",omitempty"`
	SentAt      time.Time
	Edited      bool                `json:",omitempty"`
	Standby     bool                `json:",omitempty"`
	Event       string              `json:",omitempty"`
	Attachments []InboundAttachment `json:",omitempty"`
}

// InboundAttachment is a file of an inbound message, as the provider names it.
type InboundAttachment struct {
	Kind, RemoteID, URL, Name, MediaType string
	Size                                 int64
}

// Conversation events carried by InboundMessage.Event.
const (
	EventHandoverToUs  = "handover_to_us"
	EventHandoverToBot = "handover_to_bot"
)

// Offer says a chat was offered to an agent who has AcceptTimeout to accept.
type Offer struct {
	ChatID        string
	AgentID       string
	AcceptTimeout time.Duration
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
