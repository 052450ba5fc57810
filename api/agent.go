package api

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/workflows"
)

func (s *server) agentRoutes(g *gin.RouterGroup) {
	g.GET("/me", s.me)
	g.GET("/agent/status", s.getStatus)
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
	u := currentUser(c)
	ctx := c.Request.Context()
	qs, err := s.Store.AgentQueueIDs(ctx, u.ID)
	if err != nil {
		fail(c, err)
		return
	}
	admin, err := s.Store.CanManageChats(ctx, u.ID)
	if err != nil {
		fail(c, err)
		return
	}
	if qs == nil {
		qs = []uuid.UUID{}
	}
	c.JSON(http.StatusOK, MeDTO{UserDTO: userDTO(u), QueueIDs: qs, IsAdmin: admin})
}

// StatusDTO is an agent's status.
type StatusDTO struct {
	Status string `json:"status" binding:"required,oneof=active inactive"`
}

func (s *server) getStatus(c *gin.Context) {
	c.JSON(http.StatusOK, StatusDTO{Status: currentUser(c).Status})
}

func (s *server) putStatus(c *gin.Context) {
	var req StatusDTO
	if !bindJSON(c, &req) {
		return
	}
	u := currentUser(c)
	if err := s.Store.SetAgentStatus(c.Request.Context(), u.ID, req.Status); err != nil {
		fail(c, err)
		return
	}
	if req.Status == models.AgentActive {
		s.kick(c) // capacity appeared: waiting chats may be offered
	}
	c.JSON(http.StatusOK, req)
}

// kick wakes the dispatcher; failing to do so never fails the request, the next kick catches up.
func (s *server) kick(c *gin.Context) {
	if err := s.Chats.Kick(c.Request.Context()); err != nil {
		loggerFrom(c).WarnContext(c.Request.Context(), "dispatcher kick failed", "error", err)
	}
}

// ChatDTO is a chat as agents see it.
type ChatDTO struct {
	ID             uuid.UUID  `json:"id"`
	Status         string     `json:"status"`
	ChannelID      uuid.UUID  `json:"channel_id"`
	ChannelName    string     `json:"channel_name"`
	Provider       string     `json:"provider"`
	QueueID        uuid.UUID  `json:"queue_id"`
	QueueName      string     `json:"queue_name"`
	RoutingRule    string     `json:"routing_rule"`
	ContactID      uuid.UUID  `json:"contact_id"`
	ContactName    string     `json:"contact_name"`
	ContactPhoto   string     `json:"contact_photo_url,omitempty"`
	AgentID        *uuid.UUID `json:"agent_id"`
	UnreadMessages int        `json:"unread_messages"`
	WaitingSince   time.Time  `json:"waiting_since"`
	OfferedAt      *time.Time `json:"offered_at"`
	AcceptedAt     *time.Time `json:"accepted_at"`
	ClosedAt       *time.Time `json:"closed_at"`
	CloseReason    *string    `json:"close_reason"`
	LastMessageAt  *time.Time `json:"last_message_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func chatDTO(r *models.ChatRow) ChatDTO {
	return ChatDTO{ID: r.ID, Status: r.Status, ChannelID: r.ChannelID, ChannelName: r.ChannelName, Provider: r.Provider,
		QueueID: r.QueueID, QueueName: r.QueueName, RoutingRule: r.RoutingRule, ContactID: r.ContactID, ContactName: r.ContactName,
		AgentID: r.AgentID, UnreadMessages: r.UnreadMessages, WaitingSince: r.WaitingSince, OfferedAt: r.OfferedAt,
		AcceptedAt: r.AcceptedAt, ClosedAt: r.ClosedAt, CloseReason: r.CloseReason, LastMessageAt: r.LastMessageAt, CreatedAt: r.CreatedAt,
		ContactPhoto: photoURL(r.ContactPhotoID)}
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
	Status string `form:"status" binding:"omitempty,oneof=waiting offered in_progress closed"`
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
	rows, err := s.Store.ListAgentChats(c.Request.Context(), currentUser(c).ID, models.ChatFilter{Status: q.Status, Before: q.Cursor, Limit: q.Limit})
	if err != nil {
		fail(c, err)
		return
	}
	page := ChatPage{Items: make([]ChatDTO, 0, len(rows))}
	for i := range rows {
		page.Items = append(page.Items, chatDTO(&rows[i]))
	}
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
	chats, _, err := s.Store.UnreadCounts(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, CountDTO{Count: chats})
}

func (s *server) unreadMessages(c *gin.Context) {
	_, msgs, err := s.Store.UnreadCounts(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, CountDTO{Count: msgs})
}

// chatParam loads the chat in the path for the current agent: 404 when it is
// not theirs to see, whether or not it exists.
func (s *server) chatParam(c *gin.Context) (*models.ChatRow, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		problem(c, http.StatusNotFound, "chat not found")
		return nil, false
	}
	row, err := s.Store.AgentChat(c.Request.Context(), currentUser(c).ID, id)
	if err != nil {
		fail(c, err)
		return nil, false
	}
	return row, true
}

func (s *server) getChat(c *gin.Context) {
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, chatDTO(row))
}

// respondChat answers with the chat as stored after a command.
func (s *server) respondChat(c *gin.Context, id uuid.UUID) {
	row, err := s.Store.AgentChat(c.Request.Context(), currentUser(c).ID, id)
	if err != nil {
		// The command succeeded but the chat left the agent's sight (a transfer).
		c.JSON(http.StatusOK, gin.H{"id": id})
		return
	}
	c.JSON(http.StatusOK, chatDTO(row))
}

func (s *server) acceptChat(c *gin.Context) {
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	if row.Status == models.ChatClosed {
		problem(c, http.StatusConflict, "chat is closed")
		return
	}
	if _, err := s.Chats.Accept(c.Request.Context(), row.WorkflowID, workflows.AcceptRequest{AgentID: currentUser(c).ID.String()}); err != nil {
		fail(c, err)
		return
	}
	s.respondChat(c, row.ID)
}

func (s *server) markRead(c *gin.Context) {
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	if err := s.Store.MarkRead(c.Request.Context(), row.ID); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
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

func attachmentDTO(a *models.Attachment) AttachmentDTO {
	return AttachmentDTO{ID: a.ID, Kind: a.Kind, Name: a.Name, MediaType: a.MediaType, Size: a.Size, Status: a.Status,
		FailReason: a.FailReason, URL: "/api/v1/attachments/" + a.ID.String()}
}

// MessageDTO is a message of a chat.
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

func messageDTO(m *models.Message) MessageDTO {
	return MessageDTO{ID: m.ID, ChatID: m.ChatID, Direction: m.Direction, Kind: m.Kind, Attachments: []AttachmentDTO{}, EditedAt: m.EditedAt,
		Text: m.Text, SenderName: m.SenderName, AgentID: m.AgentID,
		Status: m.Status, FailReason: m.FailReason, ExternalID: m.ExternalID, SentAt: m.ProviderTime, CreatedAt: m.CreatedAt}
}

// withAttachments fills the messages' attachment lists.
func (s *server) withAttachments(c *gin.Context, msgs []MessageDTO) error {
	ids := make([]uuid.UUID, len(msgs))
	at := map[uuid.UUID]int{}
	for i, m := range msgs {
		ids[i] = m.ID
		at[m.ID] = i
	}
	atts, err := s.Store.MessageAttachments(c.Request.Context(), ids)
	if err != nil {
		return err
	}
	for i := range atts {
		if atts[i].MessageID != nil {
			j := at[*atts[i].MessageID]
			msgs[j].Attachments = append(msgs[j].Attachments, attachmentDTO(&atts[i]))
		}
	}
	return nil
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
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	ms, err := s.Store.ChatMessages(c.Request.Context(), row.ID, q.Cursor, q.Limit)
	if err != nil {
		fail(c, err)
		return
	}
	page := MessagePage{Items: make([]MessageDTO, 0, len(ms))}
	for i := range ms {
		page.Items = append(page.Items, messageDTO(&ms[i]))
	}
	if err := s.withAttachments(c, page.Items); err != nil {
		fail(c, err)
		return
	}
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
	var req SendDTO
	var upload *upload
	if strings.HasPrefix(c.ContentType(), "multipart/form-data") {
		var ok bool
		if upload, ok = s.readUpload(c); !ok {
			return
		}
		req.Text = upload.caption
	} else if !bindJSON(c, &req) {
		return
	}
	key := c.GetHeader("Idempotency-Key")
	if len(key) > 200 {
		problem(c, http.StatusBadRequest, "Idempotency-Key is longer than 200 characters", FieldError{Field: "Idempotency-Key", Message: "must be at most 200 characters"})
		return
	}
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	send := workflows.SendRequest{AgentID: currentUser(c).ID.String(), Text: req.Text, IdempotencyKey: key}
	if upload != nil {
		switch {
		case row.Status == models.ChatInProgress && (row.AgentID == nil || *row.AgentID != currentUser(c).ID):
			problem(c, http.StatusForbidden, "only the chat's agent can do this")
			return
		case row.Status != models.ChatInProgress:
			problem(c, http.StatusConflict, "chat is "+row.Status+"; accept it first")
			return
		}
		att, err := s.Store.CreateUpload(ctx, row.ChannelID, upload.name, upload.mediaType, upload.content)
		if err != nil {
			fail(c, err)
			return
		}
		send.AttachmentID = att.ID.String()
	}
	res, err := s.Chats.Send(ctx, row.WorkflowID, send)
	if err != nil {
		fail(c, err)
		return
	}
	msg, err := s.Store.GetMessage(ctx, uuid.MustParse(res.MessageID))
	if err != nil {
		fail(c, err)
		return
	}
	dto := []MessageDTO{messageDTO(msg)}
	if err := s.withAttachments(c, dto); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, dto[0])
}

// getAttachment serves a stored file to an agent who may see its chat.
func (s *server) getAttachment(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		problem(c, http.StatusNotFound, "attachment not found")
		return
	}
	a, err := s.Store.AgentAttachment(c.Request.Context(), currentUser(c).ID, id)
	if err != nil {
		fail(c, err)
		return
	}
	if a.Status != models.AttachmentStored {
		reason := "the file is not available yet"
		if a.FailReason != nil {
			reason = "the file could not be fetched: " + *a.FailReason
		}
		problem(c, http.StatusConflict, reason)
		return
	}
	mt, content, err := s.Files.AttachmentContent(c.Request.Context(), a.ID)
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
	c.Data(http.StatusOK, mt, content)
}

func (s *server) closeChat(c *gin.Context) {
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	if row.Status == models.ChatClosed {
		problem(c, http.StatusConflict, "chat is closed")
		return
	}
	if _, err := s.Chats.Close(c.Request.Context(), row.WorkflowID, workflows.CloseRequest{AgentID: currentUser(c).ID.String()}); err != nil {
		fail(c, err)
		return
	}
	s.respondChat(c, row.ID)
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
	row, ok := s.chatParam(c)
	if !ok {
		return
	}
	tr := workflows.TransferRequest{AgentID: currentUser(c).ID.String()}
	if req.QueueID != nil {
		if _, err := s.Store.GetQueue(c.Request.Context(), *req.QueueID); err != nil {
			fail(c, err)
			return
		}
		tr.ToQueueID = req.QueueID.String()
	} else {
		tr.ToAgentID = req.AgentID.String()
	}
	if _, err := s.Chats.Transfer(c.Request.Context(), row.WorkflowID, tr); err != nil {
		fail(c, err)
		return
	}
	s.respondChat(c, row.ID)
}

func (s *server) notificationSound(c *gin.Context) {
	f, err := s.Store.GetSettingFile(c.Request.Context(), models.SettingNotificationSound)
	if err == nil {
		c.Data(http.StatusOK, f.MediaType, f.Content)
		return
	}
	c.Data(http.StatusOK, "audio/wav", defaultSound)
}
