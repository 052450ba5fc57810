package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/models"
)

func (s *server) adminRoutes(g *gin.RouterGroup) {
	g.GET("/users", s.listUsers)
	g.POST("/users", s.createUser)
	g.GET("/users/:id", s.getUser)
	g.PATCH("/users/:id", s.patchUser)
	g.DELETE("/users/:id", s.deleteUser)
	g.GET("/users/:id/tokens", s.listTokens)
	g.POST("/users/:id/tokens", s.createToken)
	g.DELETE("/users/:id/tokens/:tokenId", s.revokeToken)

	g.GET("/roles", s.listRoles)
	g.POST("/roles", s.createRole)
	g.GET("/roles/:id", s.getRole)
	g.PATCH("/roles/:id", s.patchRole)
	g.DELETE("/roles/:id", s.deleteRole)
	g.GET("/roles/:id/members", s.listMembers)
	g.POST("/roles/:id/members", s.addMember)
	g.DELETE("/roles/:id/members/:userId", s.removeMember)

	g.GET("/queues", s.listQueues)
	g.POST("/queues", s.createQueue)
	g.GET("/queues/:id", s.getQueue)
	g.PATCH("/queues/:id", s.patchQueue)
	g.DELETE("/queues/:id", s.deleteQueue)
	g.GET("/queues/:id/agents", s.listQueueAgents)
	g.POST("/queues/:id/agents", s.addQueueAgent)
	g.DELETE("/queues/:id/agents/users/:userId", s.removeQueueUser)
	g.DELETE("/queues/:id/agents/roles/:roleId", s.removeQueueRole)

	g.GET("/channels", s.listChannels)
	g.POST("/channels", s.createChannel)
	g.GET("/channels/:id", s.getChannel)
	g.PATCH("/channels/:id", s.patchChannel)
	g.DELETE("/channels/:id", s.deleteChannel)

	g.GET("/settings", s.listSettings)
	g.GET("/settings/:code", s.getSetting)
	g.PUT("/settings/:code", s.putSetting)
	g.DELETE("/settings/:code", s.resetSetting)
}

// idParam parses a UUID path parameter, answering 404 when it is not one.
func idParam(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		problem(c, http.StatusNotFound, name+" is not a known ID")
		return uuid.Nil, false
	}
	return id, true
}

func respond[T any](c *gin.Context, status int, v T, err error) {
	if err != nil {
		fail(c, err)
		return
	}
	if status == http.StatusNoContent {
		c.Status(status)
		return
	}
	c.JSON(status, v)
}

// getOne answers GET /{id} for any admin resource.
func getOne[T, D any](c *gin.Context, load func(context.Context, uuid.UUID) (*T, error), dto func(*T) D) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	v, err := load(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(v))
}

// deleteOne answers DELETE /{id} for any admin resource.
func deleteOne(c *gin.Context, del func(context.Context, uuid.UUID) error) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, del(c.Request.Context(), id))
}

func mapSlice[A, B any](as []A, f func(*A) B) []B {
	out := make([]B, 0, len(as))
	for i := range as {
		out = append(out, f(&as[i]))
	}
	return out
}

// ---- users and tokens ----

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

func userDTO(u *models.User) UserDTO {
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

func (s *server) listUsers(c *gin.Context) {
	us, err := s.Store.ListUsers(c.Request.Context())
	respond(c, http.StatusOK, mapSlice(us, userDTO), err)
}

func (s *server) createUser(c *gin.Context) {
	var req CreateUserDTO
	if !bindJSON(c, &req) {
		return
	}
	u := &models.User{Name: req.Name, Email: strings.ToLower(req.Email), CanManageChats: req.CanManageChats}
	err := s.Store.CreateUser(c.Request.Context(), u)
	respond(c, http.StatusCreated, userDTO(u), err)
}

func (s *server) getUser(c *gin.Context) { getOne(c, s.Store.GetUser, userDTO) }

func (s *server) patchUser(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req PatchUserDTO
	if !bindJSON(c, &req) {
		return
	}
	cols := map[string]any{}
	if req.Name != nil {
		cols["name"] = *req.Name
	}
	if req.Email != nil {
		cols["email"] = strings.ToLower(*req.Email)
	}
	if req.CanManageChats != nil {
		cols["can_manage_chats"] = *req.CanManageChats
	}
	if req.Status != nil {
		cols["status"] = *req.Status
	}
	u, err := s.Store.UpdateUser(c.Request.Context(), id, cols)
	if err != nil {
		fail(c, err)
		return
	}
	if req.Status != nil && *req.Status == models.AgentActive {
		s.kick(c)
	}
	c.JSON(http.StatusOK, userDTO(u))
}

func (s *server) deleteUser(c *gin.Context) { deleteOne(c, s.Store.DeleteUser) }

// TokenDTO is a token's metadata; Token is set only in the answer that creates it.
type TokenDTO struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func tokenDTO(t *models.APIToken) TokenDTO {
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
	if _, err := s.Store.GetUser(c.Request.Context(), id); err != nil {
		fail(c, err)
		return
	}
	ts, err := s.Store.ListTokens(c.Request.Context(), id)
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
	t, token, err := s.Store.CreateToken(c.Request.Context(), id, req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	dto := tokenDTO(t)
	dto.Token = token
	c.JSON(http.StatusCreated, dto)
}

func (s *server) revokeToken(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	tokenID, ok := idParam(c, "tokenId")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, s.Store.RevokeToken(c.Request.Context(), id, tokenID))
}

// ---- roles ----

// RoleDTO is a role.
type RoleDTO struct {
	ID             uuid.UUID `json:"id"`
	Name           string    `json:"name"`
	CanManageChats bool      `json:"can_manage_chats"`
	CreatedAt      time.Time `json:"created_at"`
}

func roleDTO(r *models.Role) RoleDTO {
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

func (s *server) listRoles(c *gin.Context) {
	rs, err := s.Store.ListRoles(c.Request.Context())
	respond(c, http.StatusOK, mapSlice(rs, roleDTO), err)
}

func (s *server) createRole(c *gin.Context) {
	var req CreateRoleDTO
	if !bindJSON(c, &req) {
		return
	}
	r := &models.Role{Name: req.Name, CanManageChats: req.CanManageChats}
	err := s.Store.CreateRole(c.Request.Context(), r)
	respond(c, http.StatusCreated, roleDTO(r), err)
}

func (s *server) getRole(c *gin.Context) { getOne(c, s.Store.GetRole, roleDTO) }

func (s *server) patchRole(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req PatchRoleDTO
	if !bindJSON(c, &req) {
		return
	}
	cols := map[string]any{}
	if req.Name != nil {
		cols["name"] = *req.Name
	}
	if req.CanManageChats != nil {
		cols["can_manage_chats"] = *req.CanManageChats
	}
	r, err := s.Store.UpdateRole(c.Request.Context(), id, cols)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, roleDTO(r))
}

func (s *server) deleteRole(c *gin.Context) { deleteOne(c, s.Store.DeleteRole) }

func (s *server) listMembers(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	us, err := s.Store.RoleMembers(c.Request.Context(), id)
	respond(c, http.StatusOK, mapSlice(us, userDTO), err)
}

func (s *server) addMember(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req MemberDTO
	if !bindJSON(c, &req) {
		return
	}
	if err := s.Store.AddRoleMember(c.Request.Context(), id, req.UserID); err != nil {
		fail(c, err)
		return
	}
	s.kick(c) // the member may now serve queues with waiting chats
	c.Status(http.StatusNoContent)
}

func (s *server) removeMember(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	userID, ok := idParam(c, "userId")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, s.Store.RemoveRoleMember(c.Request.Context(), id, userID))
}

// ---- queues ----

// QueueDTO is a queue.
type QueueDTO struct {
	ID                       uuid.UUID `json:"id"`
	Name                     string    `json:"name"`
	RoutingRule              string    `json:"routing_rule"`
	CompletionTimeoutMinutes *float64  `json:"completion_timeout_minutes"`
	CreatedAt                time.Time `json:"created_at"`
}

func queueDTO(q *models.Queue) QueueDTO {
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

func (s *server) listQueues(c *gin.Context) {
	qs, err := s.Store.ListQueues(c.Request.Context())
	respond(c, http.StatusOK, mapSlice(qs, queueDTO), err)
}

func (s *server) createQueue(c *gin.Context) {
	var req CreateQueueDTO
	if !bindJSON(c, &req) {
		return
	}
	q := &models.Queue{Name: req.Name, RoutingRule: req.RoutingRule, CompletionTimeoutMinutes: req.CompletionTimeoutMinutes}
	err := s.Store.CreateQueue(c.Request.Context(), q)
	respond(c, http.StatusCreated, queueDTO(q), err)
}

func (s *server) getQueue(c *gin.Context) { getOne(c, s.Store.GetQueue, queueDTO) }

func (s *server) patchQueue(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req PatchQueueDTO
	if !bindJSON(c, &req) {
		return
	}
	cols := map[string]any{}
	if req.Name != nil {
		cols["name"] = *req.Name
	}
	if req.RoutingRule != nil {
		cols["routing_rule"] = *req.RoutingRule
	}
	if req.CompletionTimeoutMinutes != nil {
		cols["completion_timeout_minutes"] = *req.CompletionTimeoutMinutes
	}
	if req.ClearCompletionTimeout {
		cols["completion_timeout_minutes"] = nil
	}
	q, err := s.Store.UpdateQueue(c.Request.Context(), id, cols)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, queueDTO(q))
}

func (s *server) deleteQueue(c *gin.Context) { deleteOne(c, s.Store.DeleteQueue) }

func (s *server) listQueueAgents(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	qa, err := s.Store.ListQueueAgents(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, QueueAgentsDTO{Users: mapSlice(qa.Users, userDTO), Roles: mapSlice(qa.Roles, roleDTO)})
}

func (s *server) addQueueAgent(c *gin.Context) {
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
		err = s.Store.AddQueueUser(c.Request.Context(), id, *req.UserID)
	} else {
		err = s.Store.AddQueueRole(c.Request.Context(), id, *req.RoleID)
	}
	if err != nil {
		fail(c, err)
		return
	}
	s.kick(c) // a new agent may take waiting chats
	c.Status(http.StatusNoContent)
}

func (s *server) removeQueueUser(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	userID, ok := idParam(c, "userId")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, s.Store.RemoveQueueUser(c.Request.Context(), id, userID))
}

func (s *server) removeQueueRole(c *gin.Context) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	roleID, ok := idParam(c, "roleId")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, s.Store.RemoveQueueRole(c.Request.Context(), id, roleID))
}

// ---- channels ----

// ChannelDTO is a channel; its secret and secret settings are never returned.
type ChannelDTO struct {
	ID                uuid.UUID         `json:"id"`
	Provider          string            `json:"provider"`
	Name              string            `json:"name"`
	Active            bool              `json:"active"`
	QueueID           uuid.UUID         `json:"queue_id"`
	Settings          map[string]string `json:"settings"`
	SecretSet         bool              `json:"secret_set"`
	SecretSettingsSet []string          `json:"secret_settings_set"`
	WebhookURL        string            `json:"webhook_path"`
	CreatedAt         time.Time         `json:"created_at"`
}

// secretSettings names the settings a provider keeps write-only.
func (s *server) secretSettings(provider string) map[string]bool {
	out := map[string]bool{}
	if p, ok := s.Providers.Get(provider); ok {
		if sp, ok := p.(interface{ SecretSettings() []string }); ok {
			for _, k := range sp.SecretSettings() {
				out[k] = true
			}
		}
	}
	return out
}

func (s *server) channelDTO(ch *models.Channel) ChannelDTO {
	secret := s.secretSettings(ch.Provider)
	settings := map[string]string{}
	set := []string{}
	for k, v := range ch.Settings {
		if secret[k] {
			set = append(set, k)
			continue
		}
		settings[k] = v
	}
	sort.Strings(set)
	return ChannelDTO{ID: ch.ID, Provider: ch.Provider, Name: ch.Name, Active: ch.Active, QueueID: ch.QueueID, Settings: settings,
		SecretSet: ch.Secret != "", SecretSettingsSet: set, WebhookURL: fmt.Sprintf("/webhooks/%s/%s", ch.Provider, ch.ID), CreatedAt: ch.CreatedAt}
}

// CreateChannelDTO creates a channel. Secret is write-only.
type CreateChannelDTO struct {
	Provider string            `json:"provider" binding:"required,min=1,max=50"`
	Name     string            `json:"name" binding:"required,min=1,max=200"`
	Active   *bool             `json:"active"`
	QueueID  uuid.UUID         `json:"queue_id" binding:"required"`
	Secret   string            `json:"secret" binding:"required,min=1,max=1000"`
	Settings map[string]string `json:"settings" binding:"omitempty,max=20"`
}

// PatchChannelDTO changes a channel; settings are merged into the stored ones ("" removes a key).
type PatchChannelDTO struct {
	Name     *string           `json:"name" binding:"omitempty,min=1,max=200"`
	Active   *bool             `json:"active"`
	QueueID  *uuid.UUID        `json:"queue_id"`
	Secret   *string           `json:"secret" binding:"omitempty,min=1,max=1000"`
	Settings map[string]string `json:"settings" binding:"omitempty,max=20"`
}

// channelConfig is the provider's view of a channel, with the webhook URL the
// provider must use (empty while SiteUrl is not set).
func (s *server) channelConfig(c *gin.Context, ch *models.Channel) (channels.Config, error) {
	cfg := activities.ChannelConfig(ch)
	site, err := s.Store.GetSetting(c.Request.Context(), models.SettingSiteURL)
	if err != nil {
		return cfg, err
	}
	if site != "" {
		cfg.WebhookURL = strings.TrimRight(site, "/") + "/webhooks/" + ch.Provider + "/" + ch.ID.String()
	}
	return cfg, nil
}

func (s *server) provider(name string) (channels.Provider, error) {
	p, ok := s.Providers.Get(name)
	if !ok {
		return nil, fmt.Errorf("provider must be one of %s: %w", strings.Join(s.Providers.Names(), ", "), models.ErrInvalid)
	}
	return p, nil
}

func (s *server) listChannels(c *gin.Context) {
	cs, err := s.Store.ListChannels(c.Request.Context())
	respond(c, http.StatusOK, mapSlice(cs, s.channelDTO), err)
}

func (s *server) createChannel(c *gin.Context) {
	var req CreateChannelDTO
	if !bindJSON(c, &req) {
		return
	}
	p, err := s.provider(req.Provider)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	ch := &models.Channel{ID: uuid.New(), Provider: req.Provider, Name: req.Name, Active: req.Active == nil || *req.Active,
		QueueID: req.QueueID, Secret: req.Secret, Settings: req.Settings}
	cfg, err := s.channelConfig(c, ch)
	if err != nil {
		fail(c, err)
		return
	}
	if err := p.Validate(cfg); err != nil {
		fail(c, err)
		return
	}
	if _, err := s.Store.GetQueue(ctx, req.QueueID); err != nil {
		fail(c, fmt.Errorf("queue_id: %w", models.ErrInvalid))
		return
	}
	if ch.Active {
		if err := p.Register(ctx, cfg); err != nil {
			fail(c, err)
			return
		}
	}
	err = s.Store.CreateChannel(ctx, ch)
	respond(c, http.StatusCreated, s.channelDTO(ch), err)
}

func (s *server) loadChannel(c *gin.Context) (*models.Channel, bool) {
	id, ok := idParam(c, "id")
	if !ok {
		return nil, false
	}
	ch, err := s.Store.GetChannel(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return nil, false
	}
	return ch, true
}

func (s *server) getChannel(c *gin.Context) {
	if ch, ok := s.loadChannel(c); ok {
		c.JSON(http.StatusOK, s.channelDTO(ch))
	}
}

func (s *server) patchChannel(c *gin.Context) {
	var req PatchChannelDTO
	if !bindJSON(c, &req) {
		return
	}
	ch, ok := s.loadChannel(c)
	if !ok {
		return
	}
	p, err := s.provider(ch.Provider)
	if err != nil {
		fail(c, err)
		return
	}
	wasActive := ch.Active
	if req.Name != nil {
		ch.Name = *req.Name
	}
	if req.Active != nil {
		ch.Active = *req.Active
	}
	if req.QueueID != nil {
		if _, err := s.Store.GetQueue(c.Request.Context(), *req.QueueID); err != nil {
			fail(c, fmt.Errorf("queue_id: %w", models.ErrInvalid))
			return
		}
		ch.QueueID = *req.QueueID
	}
	if req.Secret != nil {
		ch.Secret = *req.Secret
	}
	if req.Settings != nil {
		// Merge, so a write-only setting survives a change of another; "" removes one.
		merged := models.JSONMap{}
		for k, v := range ch.Settings {
			merged[k] = v
		}
		for k, v := range req.Settings {
			if v == "" {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		ch.Settings = merged
	}
	cfg, err := s.channelConfig(c, ch)
	if err != nil {
		fail(c, err)
		return
	}
	if err := p.Validate(cfg); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	switch {
	case ch.Active:
		err = p.Register(ctx, cfg)
	case wasActive:
		err = p.Unregister(ctx, cfg)
	}
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.Store.SaveChannel(ctx, ch); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.channelDTO(ch))
}

func (s *server) deleteChannel(c *gin.Context) {
	ch, ok := s.loadChannel(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := s.Store.DeleteChannel(ctx, ch.ID); err != nil {
		fail(c, err)
		return
	}
	if p, ok := s.Providers.Get(ch.Provider); ok && ch.Active {
		cfg, _ := s.channelConfig(c, ch)
		if err := p.Unregister(ctx, cfg); err != nil {
			loggerFrom(c).WarnContext(ctx, "channel deleted but provider unregister failed", "channel", ch.ID, "error", err)
		}
	}
	c.Status(http.StatusNoContent)
}

// ---- settings ----

// SettingDTO is a system setting.
type SettingDTO struct {
	Code        string `json:"code"`
	Kind        string `json:"kind"`
	Value       string `json:"value"`
	Default     string `json:"default"`
	Description string `json:"description"`
}

// PutSettingDTO sets a setting.
type PutSettingDTO struct {
	Value string `json:"value" binding:"max=2000"`
}

// maxSoundBytes bounds the notification sound upload.
const maxSoundBytes = 512 << 10

func (s *server) settingDTO(c *gin.Context, def models.SettingDef) (SettingDTO, error) {
	dto := SettingDTO{Code: def.Code, Kind: def.Kind, Default: def.Default, Description: def.Description}
	if def.Kind == "file" {
		f, err := s.Store.GetSettingFile(c.Request.Context(), def.Code)
		if err == nil {
			dto.Value = fmt.Sprintf("uploaded %s, %d bytes", f.MediaType, len(f.Content))
		}
		return dto, nil
	}
	v, err := s.Store.GetSetting(c.Request.Context(), def.Code)
	dto.Value = v
	return dto, err
}

func (s *server) listSettings(c *gin.Context) {
	out := make([]SettingDTO, 0, len(models.SettingDefs))
	for _, def := range models.SettingDefs {
		dto, err := s.settingDTO(c, def)
		if err != nil {
			fail(c, err)
			return
		}
		out = append(out, dto)
	}
	c.JSON(http.StatusOK, out)
}

func settingParam(c *gin.Context) (models.SettingDef, bool) {
	def, ok := models.SettingDefByCode(c.Param("code"))
	if !ok {
		problem(c, http.StatusNotFound, "no setting "+c.Param("code"))
	}
	return def, ok
}

func (s *server) getSetting(c *gin.Context) {
	def, ok := settingParam(c)
	if !ok {
		return
	}
	dto, err := s.settingDTO(c, def)
	respond(c, http.StatusOK, dto, err)
}

// putSetting stores a value; the notification sound takes the audio file as the body.
func (s *server) putSetting(c *gin.Context) {
	def, ok := settingParam(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if def.Kind == "file" {
		mt := c.ContentType()
		if !strings.HasPrefix(mt, "audio/") {
			problem(c, http.StatusUnsupportedMediaType, "upload the sound as the body with an audio/* Content-Type")
			return
		}
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxSoundBytes+1))
		if err != nil {
			fail(c, err)
			return
		}
		if len(body) == 0 || len(body) > maxSoundBytes {
			problem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the sound must be 1 to %d bytes", maxSoundBytes))
			return
		}
		if err := s.Store.SetSettingFile(ctx, def.Code, mt, body); err != nil {
			fail(c, err)
			return
		}
	} else {
		var req PutSettingDTO
		if !bindJSON(c, &req) {
			return
		}
		if _, err := s.Store.SetSetting(ctx, def.Code, req.Value); err != nil {
			fail(c, err)
			return
		}
		if def.Code == models.SettingSimultaneousChats {
			s.kick(c) // a higher limit frees capacity
		}
	}
	dto, err := s.settingDTO(c, def)
	respond(c, http.StatusOK, dto, err)
}

func (s *server) resetSetting(c *gin.Context) {
	def, ok := settingParam(c)
	if !ok {
		return
	}
	if err := s.Store.ResetSetting(c.Request.Context(), def.Code); err != nil {
		fail(c, err)
		return
	}
	dto, err := s.settingDTO(c, def)
	respond(c, http.StatusOK, dto, err)
}
