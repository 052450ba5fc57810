package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Message kinds.
const (
	KindText        = "text"
	KindPhoto       = "photo"
	KindDocument    = "document"
	KindVoice       = "voice"
	KindAudio       = "audio"
	KindVideo       = "video"
	KindSticker     = "sticker"
	KindLocation    = "location"
	KindUnsupported = "unsupported"
)

// Conversation events: an InboundMessage with Event set is not a customer's message.
const (
	// EventHandoverToUs: omnichat now owns the conversation (a bot passed it).
	EventHandoverToUs = "handover_to_us"
	// EventHandoverToBot: a bot app took the conversation over.
	EventHandoverToBot = "handover_to_bot"
	// EventDelivered and EventRead carry a watermark: every outgoing message
	// sent before it was delivered, or read.
	EventDelivered = "delivered"
	EventRead      = "read"
	// EventEcho is our own outgoing message coming back from the provider.
	EventEcho = "echo"
	// EventBlocked and EventUnblocked: the customer blocked the bot (replies
	// cannot reach them) or allowed it again.
	EventBlocked   = "blocked"
	EventUnblocked = "unblocked"
)

// InboundMessage is a customer's message, or a conversation event, in
// omnichat's own shape whatever the provider. It is also the payload of the
// chat workflow's inbound signal, so its JSON field names stay as they are:
// histories and running chats hold them.
type InboundMessage struct {
	// ConversationID is the provider's conversation (a Telegram chat, a Messenger PSID).
	ConversationID string `json:",omitempty"`
	// ExternalID is the provider's message ID: the dedup key within a channel.
	ExternalID string
	SenderID   string
	SenderName string
	Text       string
	Kind       string `json:",omitempty"`
	SentAt     time.Time
	// Edited: the customer changed a message sent before (same ExternalID).
	Edited bool `json:",omitempty"`
	// Standby: it arrived while a bot app owns the conversation.
	Standby bool `json:",omitempty"`
	// Event is empty for a customer's message.
	Event       string          `json:",omitempty"`
	Watermark   time.Time       `json:",omitzero"`
	Attachments []AttachmentRef `json:",omitempty"`
	// ReplyToken is what the provider needs to acknowledge an interaction
	// (a Telegram callback query ID); it is never stored.
	ReplyToken string `json:",omitempty"`
	// GateSeq numbers the messages of a conversation handed to its workflow
	// by signal (conversation_gates): the chat takes messages from Postgres
	// only once it has received the last one, so order is kept.
	GateSeq int64 `json:",omitempty"`
}

// AttachmentRef points at a file the provider holds: by RemoteID (fetched
// through the provider's API) or by URL (on the provider's hosts).
type AttachmentRef struct {
	Kind, RemoteID, URL, Name, MediaType string
	Size                                 int64
}

// CleanText makes provider text storable: PostgreSQL's text cannot hold NUL,
// and invalid UTF-8 is refused, so both become U+FFFD. A message the webhook
// acknowledged must never be one the database refuses.
func CleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Clean applies CleanText to every text the message carries.
func (m *InboundMessage) Clean() {
	for _, s := range []*string{&m.ConversationID, &m.ExternalID, &m.SenderID, &m.SenderName, &m.Text, &m.Kind, &m.Event, &m.ReplyToken} {
		*s = CleanText(*s)
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		for _, s := range []*string{&a.Kind, &a.RemoteID, &a.URL, &a.Name, &a.MediaType} {
			*s = CleanText(*s)
		}
	}
}
