// Package models holds the GORM rows of omnichat and the queries over them.
package models

import (
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
)

// User is a person who signs in with a token: an agent, an admin, or both.
type User struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name           string
	Email          string
	CanManageChats bool
	Status         string
	LastAcceptedAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Role groups users; a role can be a queue agent and can carry CanManageChats.
type Role struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name           string
	CanManageChats bool
	CreatedAt      time.Time
}

// RoleMember links a user to a role.
type RoleMember struct {
	RoleID uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID uuid.UUID `gorm:"type:uuid;primaryKey"`
}

// APIToken is a bearer token; only its SHA-256 is stored.
type APIToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid"`
	Name      string
	TokenHash []byte
	Prefix    string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Queue routes the chats of its channels to its agents.
type Queue struct {
	ID                       uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name                     string
	RoutingRule              string
	CompletionTimeoutMinutes *float64
	CreatedAt                time.Time
	UpdatedAt                time.Time
}

// CompletionTimeout is the queue's completion timeout, zero when the chat never closes by itself.
func (q Queue) CompletionTimeout() time.Duration {
	if q.CompletionTimeoutMinutes == nil {
		return 0
	}
	return MinutesToDuration(*q.CompletionTimeoutMinutes)
}

// MinutesToDuration converts decimal minutes (0.05 = 3 s) to a duration rounded to the millisecond.
func MinutesToDuration(m float64) time.Duration {
	return (time.Duration(m*60*1000+0.5) * time.Millisecond)
}

// QueueUser makes a user an agent of a queue.
type QueueUser struct {
	QueueID uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID  uuid.UUID `gorm:"type:uuid;primaryKey"`
}

// QueueRole makes every member of a role an agent of a queue.
type QueueRole struct {
	QueueID uuid.UUID `gorm:"type:uuid;primaryKey"`
	RoleID  uuid.UUID `gorm:"type:uuid;primaryKey"`
}

// Channel is one messenger account (a bot, a page, an API integration).
type Channel struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	Provider  string
	Name      string
	Active    bool
	QueueID   uuid.UUID `gorm:"type:uuid"`
	Secret    string
	Settings  JSONMap `gorm:"type:jsonb"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Contact is a customer as one channel knows them.
type Contact struct {
	ID                uuid.UUID `gorm:"type:uuid;primaryKey"`
	ChannelID         uuid.UUID `gorm:"type:uuid"`
	ExternalID        string
	Name              string
	PhotoAttachmentID *uuid.UUID `gorm:"type:uuid"`
	// BlockedAt is set while the customer has blocked the bot.
	BlockedAt *time.Time
	CreatedAt time.Time
}

// Chat is one conversation from its first message to its close.
type Chat struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	Seq            int64     `gorm:"->"`
	ChannelID      uuid.UUID `gorm:"type:uuid"`
	QueueID        uuid.UUID `gorm:"type:uuid"`
	ContactID      uuid.UUID `gorm:"type:uuid"`
	ConversationID string
	WorkflowID     string
	Status         string
	AgentID        *uuid.UUID `gorm:"type:uuid"`
	WaitingSince   time.Time
	OfferedAt      *time.Time
	AcceptedAt     *time.Time
	ClosedAt       *time.Time
	CloseReason    *string
	AgentReadAt    *time.Time
	LastMessageAt  *time.Time
	CreatedAt      time.Time
	// DirectIngest: the API stores this chat's messages itself.
	DirectIngest bool
	// CustomerWaiting: the customer wrote after the agent's last reply.
	CustomerWaiting bool
}

// Message is one message of a chat, either way.
type Message struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	Seq            int64     `gorm:"->"`
	ChatID         uuid.UUID `gorm:"type:uuid"`
	ChannelID      uuid.UUID `gorm:"type:uuid"`
	Direction      string
	ExternalID     *string
	IdempotencyKey *string
	Text           string
	SenderName     string
	AgentID        *uuid.UUID `gorm:"type:uuid"`
	Status         string
	FailReason     *string
	ProviderTime   *time.Time
	Kind           string
	EditedAt       *time.Time
	CreatedAt      time.Time
}

// Attachment is a file of a message, or a contact's photo. Content is kept in
// PostgreSQL: one store to back up, transactional with its message, and files
// are capped at 20 MB.
type Attachment struct {
	ID         uuid.UUID  `gorm:"type:uuid;primaryKey"`
	ChannelID  uuid.UUID  `gorm:"type:uuid"`
	MessageID  *uuid.UUID `gorm:"type:uuid"`
	Kind       string
	RemoteID   string
	RemoteURL  string
	Name       string
	MediaType  string
	Size       int64
	Content    []byte
	Status     string
	FailReason *string
	CreatedAt  time.Time
}

// Setting is one stored system setting value.
type Setting struct {
	Code      string `gorm:"primaryKey"`
	Value     string
	UpdatedAt time.Time
}

// SettingFile is a file-valued system setting (the notification sound).
type SettingFile struct {
	Code      string `gorm:"primaryKey"`
	MediaType string
	Content   []byte
	UpdatedAt time.Time
}

// Ref is the provider's reference to the attachment's file.
func (a *Attachment) Ref() domain.AttachmentRef {
	return domain.AttachmentRef{Kind: a.Kind, RemoteID: a.RemoteID, URL: a.RemoteURL, Name: a.Name, MediaType: a.MediaType, Size: a.Size}
}
