package api

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/service"
)

func (s *server) agentRoutes(g *gin.RouterGroup) {
	g.GET("/me", s.me)
	g.GET("/agent/status", getStatus)
	g.PUT("/agent/status", s.putStatus)
	g.GET("/chats", s.listChats)
	g.GET("/chats/unread-count", s.unreadChats)
	g.GET("/messages/unread-count", s.unreadMessages)
	g.GET("/chats/:id", s.getChat)
	g.POST("/chats/:id/accept", s.acceptChat)
	g.POST("/chats/:id/read", s.markRead)
	g.GET("/chats/:id/messages", s.listMessages)
	g.POST("/chats/:id/messages", s.sendMessage)
	g.POST("/chats/:id/close", s.closeChat)
	g.POST("/chats/:id/transfer", s.transferChat)
	g.GET("/notification-sound", s.notificationSound)
	g.GET("/attachments/:id", s.getAttachment)
}

// MeDTO is the signed-in user.
type MeDTO struct {
	UserDTO
	QueueIDs []uuid.UUID `json:"queue_ids"`
	IsAdmin  bool        `json:"can_manage_chats_effective"`
}

func (s *server) me(c *gin.Context) {
	p := principal(c)
	qs, err := s.svc.Agents.Queues(c.Request.Context(), p.ID)
	respond(c, http.StatusOK, MeDTO{UserDTO: userDTO(p.User), QueueIDs: qs, IsAdmin: p.Admin}, err)
}

// StatusDTO is an agent's status.
type StatusDTO struct {
	Status string `json:"status" binding:"required,oneof=active inactive"`
}

func getStatus(c *gin.Context) {
	c.JSON(http.StatusOK, StatusDTO{Status: principal(c).Status})
}

func (s *server) putStatus(c *gin.Context) {
	var req StatusDTO
	if !bindJSON(c, &req) {
		return
	}
	respond(c, http.StatusOK, req, s.svc.Agents.SetStatus(c.Request.Context(), principal(c).ID, req.Status))
}

// ChatDTO is a chat as agents see it.
type ChatDTO struct {
	ID               uuid.UUID  `json:"id"`
	Status           string     `json:"status"`
	ChannelID        uuid.UUID  `json:"channel_id"`
	ChannelName      string     `json:"channel_name"`
	Provider         string     `json:"provider"`
	QueueID          uuid.UUID  `json:"queue_id"`
	QueueName        string     `json:"queue_name"`
	RoutingRule      string     `json:"routing_rule"`
	ContactID        uuid.UUID  `json:"contact_id"`
	ContactName      string     `json:"contact_name"`
	ContactPhoto     string     `json:"contact_photo_url,omitempty"`
	ContactBlockedAt *time.Time `json:"contact_blocked_at"`
	AgentID          *uuid.UUID `json:"agent_id"`
	UnreadMessages   int        `json:"unread_messages"`
	WaitingSince     time.Time  `json:"waiting_since"`
	OfferedAt        *time.Time `json:"offered_at"`
	AcceptedAt       *time.Time `json:"accepted_at"`
	ClosedAt         *time.Time `json:"closed_at"`
	CloseReason      *string    `json:"close_reason"`
	LastMessageAt    *time.Time `json:"last_message_at"`
	LastMessageText  *string    `json:"last_message_text"`
	OfferExpiresAt   *time.Time `json:"offer_expires_at"`
	CreatedAt        time.Time  `json:"created_at"`
}

func chatDTO(r *service.ChatRow) ChatDTO {
	return ChatDTO{ID: r.ID, Status: r.Status, ChannelID: r.ChannelID, ChannelName: r.ChannelName, Provider: r.Provider,
		QueueID: r.QueueID, QueueName: r.QueueName, RoutingRule: r.RoutingRule, ContactID: r.ContactID, ContactName: r.ContactName,
		ContactBlockedAt: r.ContactBlockedAt, AgentID: r.AgentID, UnreadMessages: r.UnreadMessages, WaitingSince: r.WaitingSince,
		OfferedAt: r.OfferedAt, AcceptedAt: r.AcceptedAt, ClosedAt: r.ClosedAt, CloseReason: r.CloseReason,
		LastMessageAt: r.LastMessageAt, CreatedAt: r.CreatedAt, ContactPhoto: photoURL(r.ContactPhotoID),
		LastMessageText: r.LastMessageText, OfferExpiresAt: r.OfferExpiresAt}
}

func photoURL(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return "/api/v1/attachments/" + id.String()
}

// ChatPage is one page of chats.
type ChatPage struct {
	Items      []ChatDTO `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ListChatsQuery filters GetChats.
type ListChatsQuery struct {
	Status string `form:"status" binding:"omitempty,oneof=bot waiting offered in_progress closed"`
	Cursor int64  `form:"cursor" binding:"omitempty,min=1"`
	Limit  int    `form:"limit" binding:"omitempty,min=1,max=100"`
}

func (s *server) listChats(c *gin.Context) {
	var q ListChatsQuery
	if !bindQuery(c, &q) {
		return
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	rows, err := s.svc.Chats.List(c.Request.Context(), principal(c), service.ChatFilter{Status: q.Status, Before: q.Cursor, Limit: q.Limit})
	if err != nil {
		fail(c, err)
		return
	}
	page := ChatPage{Items: mapSlice(rows, chatDTO)}
	if len(rows) == q.Limit {
		page.NextCursor = strconv.FormatInt(rows[len(rows)-1].Seq, 10)
	}
	c.JSON(http.StatusOK, page)
}

// CountDTO is a count.
type CountDTO struct {
	Count int `json:"count"`
}

func (s *server) unreadChats(c *gin.Context) {
	chats, _, err := s.svc.Chats.UnreadCounts(c.Request.Context(), principal(c).ID)
	respond(c, http.StatusOK, CountDTO{Count: chats}, err)
}

func (s *server) unreadMessages(c *gin.Context) {
	_, msgs, err := s.svc.Chats.UnreadCounts(c.Request.Context(), principal(c).ID)
	respond(c, http.StatusOK, CountDTO{Count: msgs}, err)
}

// chatID reads the chat in the path: 404 when it is not a UUID, as for a chat
// the agent may not see.
func chatID(c *gin.Context) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		problem(c, http.StatusNotFound, "chat not found")
		return uuid.Nil, false
	}
	return id, true
}

func (s *server) getChat(c *gin.Context) {
	id, ok := chatID(c)
	if !ok {
		return
	}
	row, err := s.svc.Chats.Get(c.Request.Context(), principal(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, chatDTO(row))
}

// chatCommand answers a command with the chat as stored afterwards, or with
// its ID alone when it left the agent's sight (a transfer).
func chatCommand(c *gin.Context, run func(p *service.Principal, id uuid.UUID) (*service.ChatRow, error)) {
	id, ok := chatID(c)
	if !ok {
		return
	}
	row, err := run(principal(c), id)
	switch {
	case err != nil:
		fail(c, err)
	case row == nil:
		c.JSON(http.StatusOK, gin.H{"id": id})
	default:
		c.JSON(http.StatusOK, chatDTO(row))
	}
}

func (s *server) acceptChat(c *gin.Context) {
	chatCommand(c, func(p *service.Principal, id uuid.UUID) (*service.ChatRow, error) {
		return s.svc.Chats.Accept(c.Request.Context(), p, id)
	})
}

func (s *server) closeChat(c *gin.Context) {
	chatCommand(c, func(p *service.Principal, id uuid.UUID) (*service.ChatRow, error) {
		return s.svc.Chats.Close(c.Request.Context(), p, id)
	})
}

// TransferDTO moves a chat to another queue or agent.
type TransferDTO struct {
	QueueID *uuid.UUID `json:"queue_id" binding:"required_without=AgentID,excluded_with=AgentID"`
	AgentID *uuid.UUID `json:"agent_id" binding:"required_without=QueueID"`
}

func (s *server) transferChat(c *gin.Context) {
	var req TransferDTO
	if !bindJSON(c, &req) {
		return
	}
	chatCommand(c, func(p *service.Principal, id uuid.UUID) (*service.ChatRow, error) {
		return s.svc.Chats.Transfer(c.Request.Context(), p, id, service.TransferInput{QueueID: req.QueueID, AgentID: req.AgentID})
	})
}

func (s *server) markRead(c *gin.Context) {
	id, ok := chatID(c)
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, s.svc.Chats.MarkRead(c.Request.Context(), principal(c), id))
}

// AttachmentDTO is a file of a message; its content is at URL.
type AttachmentDTO struct {
	ID         uuid.UUID `json:"id"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	MediaType  string    `json:"media_type"`
	Size       int64     `json:"size"`
	Status     string    `json:"status"`
	FailReason *string   `json:"fail_reason"`
	URL        string    `json:"url"`
}

func attachmentDTO(a *service.Attachment) AttachmentDTO {
	return AttachmentDTO{ID: a.ID, Kind: a.Kind, Name: a.Name, MediaType: a.MediaType, Size: a.Size, Status: a.Status,
		FailReason: a.FailReason, URL: "/api/v1/attachments/" + a.ID.String()}
}

// MessageDTO is a message of a chat: inbound (the customer's), outbound (an
// agent's reply) or system (a note only agents see).
type MessageDTO struct {
	ID          uuid.UUID       `json:"id"`
	ChatID      uuid.UUID       `json:"chat_id"`
	Direction   string          `json:"direction"`
	Kind        string          `json:"kind"`
	Attachments []AttachmentDTO `json:"attachments"`
	EditedAt    *time.Time      `json:"edited_at"`
	Text        string          `json:"text"`
	SenderName  string          `json:"sender_name"`
	AgentID     *uuid.UUID      `json:"agent_id"`
	Status      string          `json:"status"`
	FailReason  *string         `json:"fail_reason"`
	ExternalID  *string         `json:"external_id"`
	SentAt      *time.Time      `json:"sent_at"`
	CreatedAt   time.Time       `json:"created_at"`
}

func messageDTO(v *service.MessageView) MessageDTO {
	m := &v.Message
	return MessageDTO{ID: m.ID, ChatID: m.ChatID, Direction: m.Direction, Kind: m.Kind, Attachments: mapSlice(v.Attachments, attachmentDTO),
		EditedAt: m.EditedAt, Text: m.Text, SenderName: m.SenderName, AgentID: m.AgentID, Status: m.Status, FailReason: m.FailReason,
		ExternalID: m.ExternalID, SentAt: m.ProviderTime, CreatedAt: m.CreatedAt}
}

// MessagePage is one page of a conversation, oldest first.
type MessagePage struct {
	Items      []MessageDTO `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ListMessagesQuery pages GetConversation.
type ListMessagesQuery struct {
	Cursor int64 `form:"cursor" binding:"omitempty,min=1"`
	Limit  int   `form:"limit" binding:"omitempty,min=1,max=100"`
}

func (s *server) listMessages(c *gin.Context) {
	var q ListMessagesQuery
	if !bindQuery(c, &q) {
		return
	}
	id, ok := chatID(c)
	if !ok {
		return
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	ms, err := s.svc.Chats.Messages(c.Request.Context(), principal(c), id, q.Cursor, q.Limit)
	if err != nil {
		fail(c, err)
		return
	}
	page := MessagePage{Items: mapSlice(ms, messageDTO)}
	if len(ms) == q.Limit {
		page.NextCursor = strconv.FormatInt(ms[len(ms)-1].Seq, 10)
	}
	c.JSON(http.StatusOK, page)
}

// SendDTO is an agent's reply.
type SendDTO struct {
	Text string `json:"text" binding:"required,min=1,max=10000"`
}

func (s *server) sendMessage(c *gin.Context) {
	var in service.SendInput
	if strings.HasPrefix(c.ContentType(), "multipart/form-data") {
		up, ok := s.readUpload(c)
		if !ok {
			return
		}
		in.Text, in.File = up.caption, &service.Upload{Name: up.name, MediaType: up.mediaType, Content: up.content}
	} else {
		var req SendDTO
		if !bindJSON(c, &req) {
			return
		}
		in.Text = req.Text
	}
	in.IdempotencyKey = c.GetHeader("Idempotency-Key")
	if len(in.IdempotencyKey) > 200 {
		problem(c, http.StatusBadRequest, "Idempotency-Key is longer than 200 characters", FieldError{Field: "Idempotency-Key", Message: "must be at most 200 characters"})
		return
	}
	id, ok := chatID(c)
	if !ok {
		return
	}
	msg, err := s.svc.Chats.Send(c.Request.Context(), principal(c), id, in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, messageDTO(msg))
}

// getAttachment serves a stored file to an agent who may see its chat.
func (s *server) getAttachment(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		problem(c, http.StatusNotFound, "attachment not found")
		return
	}
	a, content, err := s.svc.Chats.Attachment(c.Request.Context(), principal(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	name := a.Name
	if name == "" {
		name = a.Kind
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	c.Data(http.StatusOK, a.MediaType, content)
}

func (s *server) notificationSound(c *gin.Context) {
	mt, content, err := s.svc.Settings.NotificationSound(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, mt, content)
}
