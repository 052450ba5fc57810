package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/service"
)

func (s *server) queueRoutes(g *gin.RouterGroup) {
	queues := s.svc.Queues
	g.GET("/queues", func(c *gin.Context) { listAll(c, queues.List, queueDTO) })
	g.POST("/queues", func(c *gin.Context) {
		createOne(c, func(ctx context.Context, req *CreateQueueDTO) (*service.Queue, error) {
			return queues.Create(ctx, service.NewQueue{Name: req.Name, RoutingRule: req.RoutingRule, CompletionTimeoutMinutes: req.CompletionTimeoutMinutes})
		}, queueDTO)
	})
	g.GET("/queues/:id", func(c *gin.Context) { getOne(c, queues.Get, queueDTO) })
	g.PATCH("/queues/:id", func(c *gin.Context) {
		patchOne(c, func(ctx context.Context, id uuid.UUID, req *PatchQueueDTO) (*service.Queue, error) {
			return queues.Update(ctx, id, service.QueuePatch{Name: req.Name, RoutingRule: req.RoutingRule,
				CompletionTimeoutMinutes: req.CompletionTimeoutMinutes, ClearCompletionTimeout: req.ClearCompletionTimeout})
		}, queueDTO)
	})
	g.DELETE("/queues/:id", func(c *gin.Context) { deleteOne(c, queues.Delete) })
	g.GET("/queues/:id/agents", func(c *gin.Context) {
		id, ok := idParam(c, "id")
		if !ok {
			return
		}
		qa, err := queues.Agents(c.Request.Context(), id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, QueueAgentsDTO{Users: mapSlice(qa.Users, userDTO), Roles: mapSlice(qa.Roles, roleDTO)})
	})
	g.POST("/queues/:id/agents", func(c *gin.Context) {
		id, ok := idParam(c, "id")
		if !ok {
			return
		}
		var req AddQueueAgentDTO
		if !bindJSON(c, &req) {
			return
		}
		var err error
		if req.UserID != nil {
			err = queues.AddUser(c.Request.Context(), id, *req.UserID)
		} else {
			err = queues.AddRole(c.Request.Context(), id, *req.RoleID)
		}
		respond(c, http.StatusNoContent, 0, err)
	})
	g.DELETE("/queues/:id/agents/users/:userId", func(c *gin.Context) { deletePair(c, "userId", queues.RemoveUser) })
	g.DELETE("/queues/:id/agents/roles/:roleId", func(c *gin.Context) { deletePair(c, "roleId", queues.RemoveRole) })
}

// QueueDTO is a queue.
type QueueDTO struct {
	ID                       uuid.UUID `json:"id"`
	Name                     string    `json:"name"`
	RoutingRule              string    `json:"routing_rule"`
	CompletionTimeoutMinutes *float64  `json:"completion_timeout_minutes"`
	CreatedAt                time.Time `json:"created_at"`
}

func queueDTO(q *service.Queue) QueueDTO {
	return QueueDTO{ID: q.ID, Name: q.Name, RoutingRule: q.RoutingRule, CompletionTimeoutMinutes: q.CompletionTimeoutMinutes, CreatedAt: q.CreatedAt}
}

// CreateQueueDTO creates a queue; no completion timeout means chats never close by themselves.
type CreateQueueDTO struct {
	Name                     string   `json:"name" binding:"required,min=1,max=200"`
	RoutingRule              string   `json:"routing_rule" binding:"required,oneof=all_agents available_agent"`
	CompletionTimeoutMinutes *float64 `json:"completion_timeout_minutes" binding:"omitempty,gt=0,max=525600"`
}

// PatchQueueDTO changes a queue; clear_completion_timeout removes the timeout.
type PatchQueueDTO struct {
	Name                     *string  `json:"name" binding:"omitempty,min=1,max=200"`
	RoutingRule              *string  `json:"routing_rule" binding:"omitempty,oneof=all_agents available_agent"`
	CompletionTimeoutMinutes *float64 `json:"completion_timeout_minutes" binding:"omitempty,gt=0,max=525600"`
	ClearCompletionTimeout   bool     `json:"clear_completion_timeout" binding:"excluded_with=CompletionTimeoutMinutes"`
}

// QueueAgentsDTO lists a queue's agents.
type QueueAgentsDTO struct {
	Users []UserDTO `json:"users"`
	Roles []RoleDTO `json:"roles"`
}

// AddQueueAgentDTO adds a user or a role.
type AddQueueAgentDTO struct {
	UserID *uuid.UUID `json:"user_id" binding:"required_without=RoleID,excluded_with=RoleID"`
	RoleID *uuid.UUID `json:"role_id" binding:"required_without=UserID"`
}
