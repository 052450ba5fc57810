package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/service"
)

func (s *server) userRoutes(g *gin.RouterGroup) {
	users := s.svc.Users
	g.GET("/users", func(c *gin.Context) { listAll(c, users.List, userDTO) })
	g.POST("/users", func(c *gin.Context) {
		createOne(c, func(ctx context.Context, req *CreateUserDTO) (*service.User, error) {
			return users.Create(ctx, service.NewUser{Name: req.Name, Email: req.Email, CanManageChats: req.CanManageChats})
		}, userDTO)
	})
	g.GET("/users/:id", func(c *gin.Context) { getOne(c, users.Get, userDTO) })
	g.PATCH("/users/:id", func(c *gin.Context) {
		patchOne(c, func(ctx context.Context, id uuid.UUID, req *PatchUserDTO) (*service.User, error) {
			return users.Update(ctx, id, service.UserPatch{Name: req.Name, Email: req.Email, CanManageChats: req.CanManageChats, Status: req.Status})
		}, userDTO)
	})
	g.DELETE("/users/:id", func(c *gin.Context) { deleteOne(c, users.Delete) })
	g.GET("/users/:id/tokens", s.listTokens)
	g.POST("/users/:id/tokens", s.createToken)
	g.DELETE("/users/:id/tokens/:tokenId", func(c *gin.Context) { deletePair(c, "tokenId", users.RevokeToken) })
}

// UserDTO is a user.
type UserDTO struct {
	ID             uuid.UUID  `json:"id"`
	Name           string     `json:"name"`
	Email          string     `json:"email"`
	CanManageChats bool       `json:"can_manage_chats"`
	Status         string     `json:"status"`
	LastAcceptedAt *time.Time `json:"last_accepted_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func userDTO(u *service.User) UserDTO {
	return UserDTO{ID: u.ID, Name: u.Name, Email: u.Email, CanManageChats: u.CanManageChats, Status: u.Status,
		LastAcceptedAt: u.LastAcceptedAt, CreatedAt: u.CreatedAt}
}

// CreateUserDTO creates a user.
type CreateUserDTO struct {
	Name           string `json:"name" binding:"required,min=1,max=200"`
	Email          string `json:"email" binding:"required,email,max=320"`
	CanManageChats bool   `json:"can_manage_chats"`
}

// PatchUserDTO changes a user.
type PatchUserDTO struct {
	Name           *string `json:"name" binding:"omitempty,min=1,max=200"`
	Email          *string `json:"email" binding:"omitempty,email,max=320"`
	CanManageChats *bool   `json:"can_manage_chats"`
	Status         *string `json:"status" binding:"omitempty,oneof=active inactive"`
}

// TokenDTO is a token's metadata; Token is set only in the answer that creates it.
type TokenDTO struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func tokenDTO(t *service.APIToken) TokenDTO {
	return TokenDTO{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
}

// CreateTokenDTO names a new token.
type CreateTokenDTO struct {
	Name string `json:"name" binding:"required,min=1,max=200"`
}

func (s *server) listTokens(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	ts, err := s.svc.Users.Tokens(c.Request.Context(), id)
	respond(c, http.StatusOK, mapSlice(ts, tokenDTO), err)
}

func (s *server) createToken(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req CreateTokenDTO
	if !bindJSON(c, &req) {
		return
	}
	t, token, err := s.svc.Users.CreateToken(c.Request.Context(), id, req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	dto := tokenDTO(t)
	dto.Token = token
	c.JSON(http.StatusCreated, dto)
}
