package service

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Users manages users, their bearer tokens and roles, and authenticates requests.
type Users struct {
	store *models.Store
}

// Principal is an authenticated user and what they may do.
type Principal struct {
	*User
	// Admin: the user holds CanManageChats, directly or through a role.
	Admin bool
}

// Authenticate resolves a bearer token; ErrNotFound when it is unknown or revoked.
func (u *Users) Authenticate(ctx context.Context, token string) (*Principal, error) {
	user, err := u.store.UserByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return principalOf(user), nil
}

// principalOf is one builder of principals, for tokens and sessions alike.
func principalOf(u *models.SignedIn) *Principal {
	return &Principal{User: &u.User, Admin: u.CanManage}
}

// NewUser describes a user to create.
type NewUser struct {
	Name           string
	Email          string
	CanManageChats bool
}

// Create adds a user; emails are kept lower-case, so they match however typed.
func (u *Users) Create(ctx context.Context, in NewUser) (*User, error) {
	user := &models.User{Name: in.Name, Email: strings.ToLower(in.Email), CanManageChats: in.CanManageChats}
	return user, u.store.CreateUser(ctx, user)
}

// Get loads a user.
func (u *Users) Get(ctx context.Context, id uuid.UUID) (*User, error) {
	return u.store.GetUser(ctx, id)
}

// List lists users by name.
func (u *Users) List(ctx context.Context) ([]User, error) { return u.store.ListUsers(ctx) }

// UserPatch changes the fields that are set.
type UserPatch struct {
	Name           *string
	Email          *string
	CanManageChats *bool
	Status         *string
}

// Update changes a user. An agent made Active may take waiting chats, so
// routing is woken with the change.
func (u *Users) Update(ctx context.Context, id uuid.UUID, p UserPatch) (*User, error) {
	if p.Email != nil {
		email := strings.ToLower(*p.Email)
		p.Email = &email
	}
	cols := map[string]any{}
	setIf(cols, "name", p.Name)
	setIf(cols, "email", p.Email)
	setIf(cols, "can_manage_chats", p.CanManageChats)
	setIf(cols, "status", p.Status)
	var user *User
	err := wakeRoutingAfter(ctx, u.store, func(tx *models.Store) (bool, error) {
		var err error
		user, err = tx.UpdateUser(ctx, id, cols)
		return p.Status != nil && *p.Status == domain.AgentActive, err
	})
	return user, err
}

// Delete removes a user who never handled a chat.
func (u *Users) Delete(ctx context.Context, id uuid.UUID) error { return u.store.DeleteUser(ctx, id) }

// Tokens lists a user's tokens, never their values.
func (u *Users) Tokens(ctx context.Context, userID uuid.UUID) ([]APIToken, error) {
	if _, err := u.store.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	return u.store.ListTokens(ctx, userID)
}

// CreateToken issues a token and returns its only plaintext copy.
func (u *Users) CreateToken(ctx context.Context, userID uuid.UUID, name string) (*APIToken, string, error) {
	return u.store.CreateToken(ctx, userID, name)
}

// RevokeToken revokes one of a user's tokens.
func (u *Users) RevokeToken(ctx context.Context, userID, tokenID uuid.UUID) error {
	return u.store.RevokeToken(ctx, userID, tokenID)
}

// NewRole describes a role to create.
type NewRole struct {
	Name           string
	CanManageChats bool
}

// CreateRole adds a role.
func (u *Users) CreateRole(ctx context.Context, in NewRole) (*Role, error) {
	r := &models.Role{Name: in.Name, CanManageChats: in.CanManageChats}
	return r, u.store.CreateRole(ctx, r)
}

// Role loads a role.
func (u *Users) Role(ctx context.Context, id uuid.UUID) (*Role, error) {
	return u.store.GetRole(ctx, id)
}

// Roles lists roles by name.
func (u *Users) Roles(ctx context.Context) ([]Role, error) { return u.store.ListRoles(ctx) }

// RolePatch changes the fields that are set.
type RolePatch struct {
	Name           *string
	CanManageChats *bool
}

// UpdateRole changes a role.
func (u *Users) UpdateRole(ctx context.Context, id uuid.UUID, p RolePatch) (*Role, error) {
	cols := map[string]any{}
	setIf(cols, "name", p.Name)
	setIf(cols, "can_manage_chats", p.CanManageChats)
	return u.store.UpdateRole(ctx, id, cols)
}

// DeleteRole removes a role and its memberships.
func (u *Users) DeleteRole(ctx context.Context, id uuid.UUID) error {
	return u.store.DeleteRole(ctx, id)
}

// Members lists a role's users.
func (u *Users) Members(ctx context.Context, roleID uuid.UUID) ([]User, error) {
	return u.store.RoleMembers(ctx, roleID)
}

// AddMember adds a user to a role; the user may now serve the role's queues,
// so routing is woken.
func (u *Users) AddMember(ctx context.Context, roleID, userID uuid.UUID) error {
	return wakeRoutingAfter(ctx, u.store, func(tx *models.Store) (bool, error) {
		return true, tx.AddRoleMember(ctx, roleID, userID)
	})
}

// RemoveMember removes a user from a role.
func (u *Users) RemoveMember(ctx context.Context, roleID, userID uuid.UUID) error {
	return u.store.RemoveRoleMember(ctx, roleID, userID)
}
