// Package domain is omnichat's shared vocabulary: chat, agent, message and
// attachment statuses, routing rules, close reasons, the kinds of domain
// errors, and the inbound message every channel provider produces. Every
// layer (api, service, workflows, activities, models, channels) uses these
// words; none is declared twice.
package domain

import "time"

// Chat statuses, as stored in the chats table and carried by the chat workflow.
const (
	// ChatBot: a bot app owns the conversation (Messenger handover); stored, not routed.
	ChatBot        = "bot"
	ChatWaiting    = "waiting"
	ChatOffered    = "offered"
	ChatInProgress = "in_progress"
	ChatClosed     = "closed"
)

// OfferTimeSlack is how far apart two times of one offer may be: routing
// stamps an offer in nanoseconds and Postgres keeps microseconds, while the
// chat's next offer comes after an expiry, a return and a routing pass.
const OfferTimeSlack = time.Millisecond

// Agent statuses.
const (
	AgentActive   = "active"
	AgentInactive = "inactive"
)

// Routing rules of a queue.
const (
	// RuleAllAgents shows a waiting chat to every free agent of the queue; the first accept wins.
	RuleAllAgents = "all_agents"
	// RuleAvailableAgent offers a waiting chat to one agent chosen by routing.
	RuleAvailableAgent = "available_agent"
)

// Close reasons.
const (
	CloseByAgent = "agent"
	CloseTimeout = "timeout"
	CloseByBot   = "bot"
)

// Message directions.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
	// System messages are notes in the conversation that only agents see
	// (the customer blocked the bot, ...); they are never sent.
	System = "system"
)

// Message statuses.
const (
	MsgReceived  = "received"
	MsgSending   = "sending"
	MsgSent      = "sent"
	MsgDelivered = "delivered"
	MsgRead      = "read"
	MsgFailed    = "failed"
)

// Attachment statuses.
const (
	AttachmentPending = "pending"
	AttachmentStored  = "stored"
	AttachmentFailed  = "failed"
)
