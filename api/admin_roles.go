package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/service"
)

func (s *server) roleRoutes(g *gin.RouterGroup) {
	users := s.svc.Users
	g.GET("/roles", func(c *gin.Context) { listAll(c, users.Roles, roleDTO) })
	g.POST("/roles", func(c *gin.Context) {
		createOne(c, func(ctx context.Context, req *CreateRoleDTO) (*service.Role, error) {
			return users.CreateRole(ctx, service.NewRole{Name: req.Name, CanManageChats: req.CanManageChats})
		}, roleDTO)
	})
	g.GET("/roles/:id", func(c *gin.Context) { getOne(c, users.Role, roleDTO) })
	g.PATCH("/roles/:id", func(c *gin.Context) {
		patchOne(c, func(ctx context.Context, id uuid.UUID, req *PatchRoleDTO) (*service.Role, error) {
			return users.UpdateRole(ctx, id, service.RolePatch{Name: req.Name, CanManageChats: req.CanManageChats})
		}, roleDTO)
	})
	g.DELETE("/roles/:id", func(c *gin.Context) { deleteOne(c, users.DeleteRole) })
	g.GET("/roles/:id/members", func(c *gin.Context) {
		id, ok := idParam(c, "id")
		if !ok {
			return
		}
		us, err := users.Members(c.Request.Context(), id)
		respond(c, http.StatusOK, mapSlice(us, userDTO), err)
	})
	g.POST("/roles/:id/members", func(c *gin.Context) {
		id, ok := idParam(c, "id")
		if !ok {
			return
		}
		var req MemberDTO
		if !bindJSON(c, &req) {
			return
		}
		respond(c, http.StatusNoContent, 0, users.AddMember(c.Request.Context(), id, req.UserID))
	})
	g.DELETE("/roles/:id/members/:userId", func(c *gin.Context) { deletePair(c, "userId", users.RemoveMember) })
}

// RoleDTO is a role.
type RoleDTO struct {
	ID             uuid.UUID `json:"id"`
	Name           string    `json:"name"`
	CanManageChats bool      `json:"can_manage_chats"`
	CreatedAt      time.Time `json:"created_at"`
}

func roleDTO(r *service.Role) RoleDTO {
	return RoleDTO{ID: r.ID, Name: r.Name, CanManageChats: r.CanManageChats, CreatedAt: r.CreatedAt}
}

// CreateRoleDTO creates a role.
type CreateRoleDTO struct {
	Name           string `json:"name" binding:"required,min=1,max=200"`
	CanManageChats bool   `json:"can_manage_chats"`
}

// PatchRoleDTO changes a role.
type PatchRoleDTO struct {
	Name           *string `json:"name" binding:"omitempty,min=1,max=200"`
	CanManageChats *bool   `json:"can_manage_chats"`
}

// MemberDTO adds a user to a role.
type MemberDTO struct {
	UserID uuid.UUID `json:"user_id" binding:"required"`
}
