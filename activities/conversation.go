package activities

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
)

// Conversation records what a chat's workflow decides: messages, the chat's
// opening, accepts, offers that expire, transfers, closes, agents' replies.
type Conversation struct {
	Chats    *service.Chats
	Channels *service.Channels
}

// Register adds the group's activities to a worker.
func (a *Conversation) Register(r Registry) { register(r, a) }

// IngestRequest is one inbound message for a chat.
type IngestRequest struct {
	ChatID     string
	OpenChat   bool
	WorkflowID string
	ChannelID  string
	Message    domain.InboundMessage
	// OpenGate: open the conversation's gate with the chat (see models.IngestInput).
	OpenGate bool `json:",omitempty"`
	// Claim: offer the new chat to a free agent in its opening transaction.
	Claim bool `json:",omitempty"`
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
	// Status of the opened chat: waiting, bot, or offered when the opening
	// claimed an agent (AgentID) at OfferedAt, who has AcceptTimeout.
	Status        string        `json:",omitempty"`
	AgentID       string        `json:",omitempty"`
	OfferedAt     time.Time     `json:",omitzero"`
	AcceptTimeout time.Duration `json:",omitempty"`
	// GateOpened: the API stores the chat's next messages itself.
	GateOpened bool `json:",omitempty"`
}

// Ingest stores an inbound message once, opening the chat if needed.
func (a *Conversation) Ingest(ctx context.Context, r IngestRequest) (IngestResult, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return IngestResult{}, err
	}
	channelID, err := parseID("channel", r.ChannelID)
	if err != nil {
		return IngestResult{}, err
	}
	in := models.IngestInput{ChatID: chatID, OpenChat: r.OpenChat, WorkflowID: r.WorkflowID, ChannelID: channelID, Message: r.Message, OpenGate: r.OpenGate}
	if r.Claim {
		in.Claim = service.Decide
	}
	res, err := a.Chats.Ingest(ctx, in)
	if err != nil {
		return IngestResult{}, failed(ctx, err, "ChatID", r.ChatID, "ExternalID", r.Message.ExternalID)
	}
	out := IngestResult{Duplicate: res.Duplicate, Stored: res.Stored, Edited: res.Edited}
	for _, id := range res.Attachments {
		out.Attachments = append(out.Attachments, id.String())
	}
	if res.Duplicate || res.Chat.ChatID == uuid.Nil {
		return out, nil
	}
	out.ChatID, out.ContactID, out.QueueID = res.Chat.ChatID.String(), res.Chat.ContactID.String(), res.Chat.QueueID.String()
	out.RoutingRule, out.CompletionTimeout = res.Chat.RoutingRule, res.Chat.CompletionTimeout
	if r.OpenChat && (r.Claim || r.OpenGate) {
		out.Status, out.GateOpened = res.Chat.Status, res.Chat.DirectIngest
		if res.Chat.Status == domain.ChatOffered && res.Chat.AgentID != nil && res.Chat.OfferedAt != nil {
			out.AgentID, out.OfferedAt, out.AcceptTimeout = res.Chat.AgentID.String(), *res.Chat.OfferedAt, res.AcceptTimeout
		}
	}
	if r.OpenChat {
		profiles, releases, err := a.Channels.Traits(ctx, channelID)
		if err != nil {
			return IngestResult{}, failed(ctx, err, "ChatID", r.ChatID)
		}
		out.NewContact = res.NewContact && profiles
		out.ReleasesThread = releases
	}
	return out, nil
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
func (a *Conversation) Accept(ctx context.Context, r ChatAgent) (AcceptResult, error) {
	chatID, agentID, err := r.ids()
	if err != nil {
		return AcceptResult{}, err
	}
	out, err := a.Chats.RecordAccept(ctx, chatID, agentID)
	if err != nil {
		return AcceptResult{}, failed(ctx, err, "ChatID", r.ChatID, "AgentID", r.AgentID)
	}
	res := AcceptResult{Accepted: out.Accepted, Status: out.Status}
	if out.AgentID != nil {
		res.AgentID = out.AgentID.String()
	}
	return res, nil
}

// ExpireRequest names the offer to take back: the chat's offer to the agent
// made at OfferedAt (zero: whenever it was made).
type ExpireRequest struct {
	ChatAgent
	OfferedAt time.Time `json:",omitzero"`
}

// ExpireOffer takes back an unaccepted offer and sets the agent Inactive.
func (a *Conversation) ExpireOffer(ctx context.Context, r ExpireRequest) (bool, error) {
	chatID, agentID, err := r.ids()
	if err != nil {
		return false, err
	}
	ok, err := a.Chats.ExpireOffer(ctx, chatID, agentID, r.OfferedAt)
	return ok, failed(ctx, err, "ChatID", r.ChatID, "AgentID", r.AgentID)
}

// CloseRequest names a chat (and, to close it, the reason).
type CloseRequest struct {
	ChatID string
	Reason string
}

// CloseChat records the close.
func (a *Conversation) CloseChat(ctx context.Context, r CloseRequest) error {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return err
	}
	return failed(ctx, a.Chats.RecordClose(ctx, chatID, r.Reason), "ChatID", r.ChatID)
}

// TransferToQueueRequest moves a chat to a queue.
type TransferToQueueRequest struct {
	ChatID  string
	QueueID string
}

// QueueInfo is what the chat learns about its (new) queue.
type QueueInfo struct {
	QueueID           string
	RoutingRule       string
	CompletionTimeout time.Duration
}

func queueInfo(info models.ChatInfo) QueueInfo {
	return QueueInfo{QueueID: info.QueueID.String(), RoutingRule: info.RoutingRule, CompletionTimeout: info.CompletionTimeout}
}

// TransferToQueue moves the chat, which then waits to be routed afresh.
func (a *Conversation) TransferToQueue(ctx context.Context, r TransferToQueueRequest) (QueueInfo, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return QueueInfo{}, err
	}
	queueID, err := parseID("queue", r.QueueID)
	if err != nil {
		return QueueInfo{}, err
	}
	info, err := a.Chats.RecordTransferToQueue(ctx, chatID, queueID)
	if err != nil {
		return QueueInfo{}, failed(ctx, err, "ChatID", r.ChatID, "QueueID", r.QueueID)
	}
	return queueInfo(info), nil
}

// TransferToAgent hands the chat to another agent of its queue.
func (a *Conversation) TransferToAgent(ctx context.Context, r ChatAgent) error {
	chatID, agentID, err := r.ids()
	if err != nil {
		return err
	}
	return failed(ctx, a.Chats.RecordTransferToAgent(ctx, chatID, agentID), "ChatID", r.ChatID, "AgentID", r.AgentID)
}

// StartRouting moves a bot-owned chat into routing when omnichat gets the conversation.
func (a *Conversation) StartRouting(ctx context.Context, r CloseRequest) (QueueInfo, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return QueueInfo{}, err
	}
	info, err := a.Chats.StartRouting(ctx, chatID)
	if err != nil {
		return QueueInfo{}, failed(ctx, err, "ChatID", r.ChatID)
	}
	return queueInfo(info), nil
}

// RecordOutboundRequest is an agent's message to store before it is sent.
type RecordOutboundRequest struct {
	MessageID      string
	ChatID         string
	AgentID        string
	Text           string
	IdempotencyKey string
	AttachmentID   string
}

// OutboundRecord is the stored message.
type OutboundRecord struct {
	MessageID string
	Status    string
	// New is false when the idempotency key matched an earlier message.
	New bool
}

// RecordOutbound stores the message once per (chat, idempotency key).
func (a *Conversation) RecordOutbound(ctx context.Context, r RecordOutboundRequest) (OutboundRecord, error) {
	in := service.OutboundInput{Text: r.Text, IdempotencyKey: r.IdempotencyKey}
	var err error
	if in.MessageID, err = parseID("message", r.MessageID); err != nil {
		return OutboundRecord{}, err
	}
	if in.ChatID, err = parseID("chat", r.ChatID); err != nil {
		return OutboundRecord{}, err
	}
	if in.AgentID, err = parseID("agent", r.AgentID); err != nil {
		return OutboundRecord{}, err
	}
	if r.AttachmentID != "" {
		id, err := parseID("attachment", r.AttachmentID)
		if err != nil {
			return OutboundRecord{}, err
		}
		in.AttachmentID = &id
	}
	msg, isNew, err := a.Chats.RecordOutbound(ctx, in)
	if err != nil {
		return OutboundRecord{}, failed(ctx, err, "ChatID", r.ChatID, "MessageID", r.MessageID)
	}
	return OutboundRecord{MessageID: msg.ID.String(), Status: msg.Status, New: isNew}, nil
}

// MarkFailedRequest records that a message could not be sent.
type MarkFailedRequest struct {
	MessageID string
	Reason    string
}

// MarkFailed records a send that ran out of retries.
func (a *Conversation) MarkFailed(ctx context.Context, r MarkFailedRequest) error {
	msgID, err := parseID("message", r.MessageID)
	if err != nil {
		return err
	}
	return failed(ctx, a.Chats.RecordSendFailed(ctx, msgID, r.Reason), "MessageID", r.MessageID)
}

// ChatRef names a chat.
type ChatRef struct {
	ChatID string
}

// CloseOnTimeout closes the chat on its completion timeout unless the
// customer wrote after the agent's last reply; it reports whether it closed.
func (a *Conversation) CloseOnTimeout(ctx context.Context, r ChatRef) (bool, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return false, err
	}
	closed, err := a.Chats.RecordTimeoutClose(ctx, chatID)
	return closed, failed(ctx, err, "ChatID", r.ChatID)
}

// CustomerWaiting reports whether the customer wrote after the agent's last reply.
func (a *Conversation) CustomerWaiting(ctx context.Context, r ChatRef) (bool, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return false, err
	}
	waiting, err := a.Chats.CustomerWaiting(ctx, chatID)
	return waiting, failed(ctx, err, "ChatID", r.ChatID)
}

// PendingAttachments lists the chat's inbound files still to download.
func (a *Conversation) PendingAttachments(ctx context.Context, r ChatRef) ([]string, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return nil, err
	}
	ids, err := a.Chats.PendingAttachments(ctx, chatID)
	if err != nil {
		return nil, failed(ctx, err, "ChatID", r.ChatID)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out, nil
}

// OpenGateRequest names the chat and the last signalled message it received.
type OpenGateRequest struct {
	ChatID   string
	Received int64
}

// OpenGate lets the API store the chat's messages once the chat received
// every message signalled to it; it reports whether it did.
func (a *Conversation) OpenGate(ctx context.Context, r OpenGateRequest) (bool, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return false, err
	}
	opened, err := a.Chats.OpenGate(ctx, chatID, r.Received)
	return opened, failed(ctx, err, "ChatID", r.ChatID)
}
