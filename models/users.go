package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/omnichat/omnichat/domain"
)

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.ID == uuid.Nil {
		u.ID = uuid.New()
	}
	if u.Status == "" {
		u.Status = domain.AgentInactive
	}
	return conflictOn(s.db.WithContext(ctx).Create(u).Error, "user with this email")
}

// GetUser loads one user.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).First(&u, "id = ?", id).Error
	return &u, notFound(err, "user")
}

// ListUsers lists users by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var us []User
	return us, s.db.WithContext(ctx).Order("name, id").Find(&us).Error
}

// UpdateUser writes the given columns of a user.
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, cols map[string]any) (*User, error) {
	if len(cols) > 0 {
		cols["updated_at"] = time.Now().UTC()
		res := s.db.WithContext(ctx).Model(&User{}).Where("id = ?", id).Updates(cols)
		if res.Error != nil {
			return nil, conflictOn(res.Error, "user with this email")
		}
	}
	return s.GetUser(ctx, id)
}

// DeleteUser removes a user that never handled a chat.
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID) error {
	res := s.db.WithContext(ctx).Delete(&User{}, "id = ?", id)
	if res.Error != nil {
		return deleteUserError(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("user: %w", domain.ErrNotFound)
	}
	return nil
}

// canManageSQL: user u holds CanManageChats directly or through a role.
const canManageSQL = `(u.can_manage_chats OR EXISTS (SELECT 1 FROM role_members m JOIN roles r ON r.id = m.role_id
	WHERE m.user_id = u.id AND r.can_manage_chats))`

// SignedIn is the user a token or a session belongs to, read with what they
// may do in one query: every authenticated request makes it.
type SignedIn struct {
	User `gorm:"embedded"`
	// CanManage: the user holds CanManageChats, directly or through a role.
	CanManage bool
}

// hashToken is how tokens are stored and looked up.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken issues a new token for a user and returns its only plaintext copy.
func (s *Store) CreateToken(ctx context.Context, userID uuid.UUID, name string) (*APIToken, string, error) {
	if _, err := s.GetUser(ctx, userID); err != nil {
		return nil, "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("token: %w", err)
	}
	token := "omc_" + base64.RawURLEncoding.EncodeToString(raw)
	t := &APIToken{ID: uuid.New(), UserID: userID, Name: name, TokenHash: hashToken(token), Prefix: token[:8]}
	if err := s.db.WithContext(ctx).Create(t).Error; err != nil {
		return nil, "", fmt.Errorf("token: %w", err)
	}
	return t, token, nil
}

// ListTokens lists a user's tokens, never their values.
func (s *Store) ListTokens(ctx context.Context, userID uuid.UUID) ([]APIToken, error) {
	var ts []APIToken
	return ts, s.db.WithContext(ctx).Where("user_id = ?", userID).Order("created_at").Find(&ts).Error
}

// RevokeToken revokes one of a user's tokens.
func (s *Store) RevokeToken(ctx context.Context, userID, tokenID uuid.UUID) error {
	res := s.db.WithContext(ctx).Model(&APIToken{}).
		Where("id = ? AND user_id = ? AND revoked_at IS NULL", tokenID, userID).
		Update("revoked_at", time.Now().UTC())
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("token: %w", domain.ErrNotFound)
	}
	return nil
}

// UserByToken resolves a bearer token to its user.
func (s *Store) UserByToken(ctx context.Context, token string) (*SignedIn, error) {
	var u SignedIn
	err := s.db.WithContext(ctx).Raw(`
		SELECT u.*, `+canManageSQL+` AS can_manage FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ? AND t.revoked_at IS NULL`, hashToken(token)).Scan(&u).Error
	if err != nil {
		return nil, err
	}
	if u.ID == uuid.Nil {
		return nil, fmt.Errorf("token: %w", domain.ErrNotFound)
	}
	return &u, nil
}

// CreateRole inserts a role.
func (s *Store) CreateRole(ctx context.Context, r *Role) error {
	r.ID = uuid.New()
	return conflictOn(s.db.WithContext(ctx).Create(r).Error, "role with this name")
}

// GetRole loads a role.
func (s *Store) GetRole(ctx context.Context, id uuid.UUID) (*Role, error) {
	var r Role
	return &r, notFound(s.db.WithContext(ctx).First(&r, "id = ?", id).Error, "role")
}

// ListRoles lists roles by name.
func (s *Store) ListRoles(ctx context.Context) ([]Role, error) {
	var rs []Role
	return rs, s.db.WithContext(ctx).Order("name").Find(&rs).Error
}

// UpdateRole writes the given columns of a role.
func (s *Store) UpdateRole(ctx context.Context, id uuid.UUID, cols map[string]any) (*Role, error) {
	if len(cols) > 0 {
		if err := s.db.WithContext(ctx).Model(&Role{}).Where("id = ?", id).Updates(cols).Error; err != nil {
			return nil, conflictOn(err, "role with this name")
		}
	}
	return s.GetRole(ctx, id)
}

// DeleteRole removes a role and its memberships.
func (s *Store) DeleteRole(ctx context.Context, id uuid.UUID) error {
	return s.deleteRows(ctx, &Role{}, "role", "id = ?", id)
}

// AddRoleMember adds a user to a role; adding twice is fine.
func (s *Store) AddRoleMember(ctx context.Context, roleID, userID uuid.UUID) error {
	if _, err := s.GetRole(ctx, roleID); err != nil {
		return err
	}
	if _, err := s.GetUser(ctx, userID); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Exec(`INSERT INTO role_members (role_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, roleID, userID).Error
}

// RemoveRoleMember removes a user from a role.
func (s *Store) RemoveRoleMember(ctx context.Context, roleID, userID uuid.UUID) error {
	return s.deleteRows(ctx, &RoleMember{}, "role member", "role_id = ? AND user_id = ?", roleID, userID)
}

// RoleMembers lists the users of a role.
func (s *Store) RoleMembers(ctx context.Context, roleID uuid.UUID) ([]User, error) {
	if _, err := s.GetRole(ctx, roleID); err != nil {
		return nil, err
	}
	var us []User
	return us, s.db.WithContext(ctx).Raw(`SELECT u.* FROM users u JOIN role_members m ON m.user_id = u.id WHERE m.role_id = ? ORDER BY u.name`, roleID).Scan(&us).Error
}

// deleteUserError tells a user still referenced (by chats, messages, events)
// from any other failure: only a foreign-key violation is the conflict; an
// outage and the rest pass through, so they are not reported as "in use".
func deleteUserError(err error) error {
	var pg *pgconn.PgError
	if errors.Is(err, gorm.ErrForeignKeyViolated) || errors.As(err, &pg) && pg.Code == "23503" {
		return fmt.Errorf("user has handled chats; remove them from queues instead: %w", domain.ErrConflict)
	}
	return err
}
