package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/nocode"
	"github.com/omnichat/omnichat/service"
)

// actionRoutes adds chat actions and cases: admins configure actions,
// agents list and run them on their chats and read cases.
func (s *server) actionRoutes(v1, admin *gin.RouterGroup) {
	acts := s.svc.Actions
	admin.GET("/actions", func(c *gin.Context) { listAll(c, acts.List, actionDTO) })
	admin.POST("/actions", func(c *gin.Context) {
		createOne(c, func(ctx context.Context, req *CreateActionDTO) (*service.Action, error) {
			return acts.Create(ctx, service.NewAction{Caption: req.Caption, QueueID: req.QueueID, Enabled: req.Enabled,
				ActionSpec: service.ActionSpec{WorkflowType: req.WorkflowType, TaskQueue: req.TaskQueue, NoCode: req.NoCode}})
		}, actionDTO)
	})
	admin.GET("/actions/:id", func(c *gin.Context) { getOne(c, acts.Get, actionDTO) })
	admin.PATCH("/actions/:id", func(c *gin.Context) {
		patchOne(c, func(ctx context.Context, id uuid.UUID, req *PatchActionDTO) (*service.Action, error) {
			return acts.Update(ctx, id, service.ActionPatch{Caption: req.Caption, QueueID: req.QueueID, ClearQueue: req.ClearQueue,
				Enabled: req.Enabled, ActionSpec: service.ActionSpec{WorkflowType: req.WorkflowType, TaskQueue: req.TaskQueue, NoCode: req.NoCode}})
		}, actionDTO)
	})
	admin.DELETE("/actions/:id", func(c *gin.Context) { deleteOne(c, acts.Delete) })

	v1.GET("/chats/:id/actions", s.chatActions)
	v1.POST("/chats/:id/actions/:actionId/run", s.runAction)
	v1.GET("/chats/:id/action-runs", s.actionRuns)
	v1.GET("/cases", s.listCases)
	v1.GET("/cases/:id", func(c *gin.Context) {
		id, err := uuid.Parse(c.Param("id"))
		if err != nil {
			problem(c, http.StatusNotFound, "case not found")
			return
		}
		cs, err := s.svc.Cases.Get(c.Request.Context(), principal(c), id)
		respond(c, http.StatusOK, caseDTO(cs), err)
	})
}

// ActionDTO is a chat action. Exactly one of workflow_type (with
// task_queue), nocode and builtin says what it runs; secret headers in
// nocode (nocode.SecretHeader) are answered as ********.
type ActionDTO struct {
	ID           uuid.UUID       `json:"id"`
	Caption      string          `json:"caption"`
	QueueID      *uuid.UUID      `json:"queue_id"`
	Enabled      bool            `json:"enabled"`
	Kind         string          `json:"kind"`
	WorkflowType string          `json:"workflow_type,omitempty"`
	TaskQueue    string          `json:"task_queue,omitempty"`
	NoCode       json.RawMessage `json:"nocode,omitempty"`
	Builtin      string          `json:"builtin,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

func actionDTO(a *service.Action) ActionDTO {
	d := ActionDTO{ID: a.ID, Caption: a.Caption, QueueID: a.QueueID, Enabled: a.Enabled, Kind: a.Kind, WorkflowType: a.WorkflowType,
		TaskQueue: a.TaskQueue, Builtin: a.Builtin, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if len(a.Definition) > 0 {
		d.NoCode = nocode.Redact(a.Definition)
	}
	return d
}

// CreateActionDTO creates an action: a workflow (workflow_type and
// task_queue) or a no-code definition (nocode).
type CreateActionDTO struct {
	Caption      string          `json:"caption" binding:"required,min=1,max=200"`
	QueueID      *uuid.UUID      `json:"queue_id"`
	Enabled      *bool           `json:"enabled"`
	WorkflowType string          `json:"workflow_type" binding:"max=200"`
	TaskQueue    string          `json:"task_queue" binding:"max=200"`
	NoCode       json.RawMessage `json:"nocode"`
}

// PatchActionDTO changes an action; clear_queue makes it visible in every queue.
type PatchActionDTO struct {
	Caption      *string         `json:"caption" binding:"omitempty,min=1,max=200"`
	QueueID      *uuid.UUID      `json:"queue_id"`
	ClearQueue   bool            `json:"clear_queue" binding:"excluded_with=QueueID"`
	Enabled      *bool           `json:"enabled"`
	WorkflowType string          `json:"workflow_type" binding:"max=200"`
	TaskQueue    string          `json:"task_queue" binding:"max=200"`
	NoCode       json.RawMessage `json:"nocode"`
}

// ChatActionDTO is an action an agent may run on a chat.
type ChatActionDTO struct {
	ID      uuid.UUID `json:"id"`
	Caption string    `json:"caption"`
	Kind    string    `json:"kind"`
}

func chatActionDTO(a *service.Action) ChatActionDTO {
	return ChatActionDTO{ID: a.ID, Caption: a.Caption, Kind: a.Kind}
}

func (s *server) chatActions(c *gin.Context) {
	id, ok := chatID(c)
	if !ok {
		return
	}
	as, err := s.svc.Actions.ForChat(c.Request.Context(), principal(c), id)
	respond(c, http.StatusOK, gin.H{"items": mapSlice(as, chatActionDTO)}, err)
}

// ActionRunDTO is a run of an action on a chat.
type ActionRunDTO struct {
	ID           uuid.UUID  `json:"id"`
	ActionID     *uuid.UUID `json:"action_id"`
	Caption      string     `json:"caption"`
	Kind         string     `json:"kind"`
	WorkflowType string     `json:"workflow_type"`
	ChatID       uuid.UUID  `json:"chat_id"`
	AgentID      uuid.UUID  `json:"agent_id"`
	Status       string     `json:"status"`
	Result       *string    `json:"result"`
	Error        *string    `json:"error"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

func actionRunDTO(r *service.ActionRun) ActionRunDTO {
	return ActionRunDTO{ID: r.ID, ActionID: r.ActionID, Caption: r.Caption, Kind: r.Kind, WorkflowType: r.WorkflowType, ChatID: r.ChatID,
		AgentID: r.AgentID, Status: r.Status, Result: r.Result, Error: r.Error, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt}
}

func (s *server) runAction(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if len(key) > 200 {
		problem(c, http.StatusBadRequest, "Idempotency-Key is longer than 200 characters", FieldError{Field: "Idempotency-Key", Message: "must be at most 200 characters"})
		return
	}
	id, ok := chatID(c)
	if !ok {
		return
	}
	actionID, err := uuid.Parse(c.Param("actionId"))
	if err != nil {
		problem(c, http.StatusNotFound, "action not found")
		return
	}
	run, err := s.svc.Actions.Run(c.Request.Context(), principal(c), id, actionID, key)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, actionRunDTO(run))
}

func (s *server) actionRuns(c *gin.Context) {
	id, ok := chatID(c)
	if !ok {
		return
	}
	rs, err := s.svc.Actions.Runs(c.Request.Context(), principal(c), id)
	respond(c, http.StatusOK, gin.H{"items": mapSlice(rs, actionRunDTO)}, err)
}

// CaseDTO is a case made from a chat.
type CaseDTO struct {
	ID          uuid.UUID  `json:"id"`
	Number      string     `json:"number"`
	Subject     string     `json:"subject"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	ContactID   uuid.UUID  `json:"contact_id"`
	ChatID      uuid.UUID  `json:"chat_id"`
	QueueID     uuid.UUID  `json:"queue_id"`
	RunID       *uuid.UUID `json:"run_id"`
	CreatedAt   time.Time  `json:"created_at"`
}

func caseDTO(cs *service.Case) CaseDTO {
	if cs == nil {
		return CaseDTO{}
	}
	return CaseDTO{ID: cs.ID, Number: cs.Number, Subject: cs.Subject, Description: cs.Description, Status: cs.Status,
		ContactID: cs.ContactID, ChatID: cs.ChatID, QueueID: cs.QueueID, RunID: cs.RunID, CreatedAt: cs.CreatedAt}
}

// ListCasesQuery filters the cases list.
type ListCasesQuery struct {
	ContactID string `form:"contact_id" binding:"omitempty,uuid"`
	ChatID    string `form:"chat_id" binding:"omitempty,uuid"`
	Limit     int    `form:"limit" binding:"omitempty,min=1,max=100"`
}

func (s *server) listCases(c *gin.Context) {
	var q ListCasesQuery
	if !bindQuery(c, &q) {
		return
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	f := service.CaseFilter{ContactID: optionalID(q.ContactID), ChatID: optionalID(q.ChatID), Limit: q.Limit}
	cs, err := s.svc.Cases.List(c.Request.Context(), principal(c), f)
	respond(c, http.StatusOK, gin.H{"items": mapSlice(cs, caseDTO)}, err)
}

// optionalID parses a query parameter validated as a UUID; "" is none.
func optionalID(s string) *uuid.UUID {
	if id, err := uuid.Parse(s); err == nil {
		return &id
	}
	return nil
}
