package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
)

// Session is a web panel sign-in, kept by the hash of its cookie's value.
type Session struct {
	TokenHash []byte `gorm:"primaryKey"`
	UserID    uuid.UUID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SetPasswordHash stores a user's password hash and ends their sessions.
func (s *Store) SetPasswordHash(ctx context.Context, userID uuid.UUID, hash string) error {
	return s.Tx(ctx, func(tx *Store) error {
		res := tx.db.WithContext(ctx).Exec(`UPDATE users SET password_hash = ?, updated_at = now() WHERE id = ?`, hash, userID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("user: %w", domain.ErrNotFound)
		}
		return tx.db.WithContext(ctx).Exec(`DELETE FROM sessions WHERE user_id = ?`, userID).Error
	})
}

// PasswordHash loads a user by email with their password hash ("" when none is set).
func (s *Store) PasswordHash(ctx context.Context, email string) (*User, string, error) {
	var row struct {
		User
		PasswordHash *string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT * FROM users WHERE email = ?`, strings.ToLower(email)).Scan(&row).Error
	if err != nil {
		return nil, "", err
	}
	if row.ID == uuid.Nil {
		return nil, "", fmt.Errorf("user: %w", domain.ErrNotFound)
	}
	hash := ""
	if row.PasswordHash != nil {
		hash = *row.PasswordHash
	}
	return &row.User, hash, nil
}

// CreateSession opens a session for a user and returns its only plaintext token.
func (s *Store) CreateSession(ctx context.Context, userID uuid.UUID, expires time.Time) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	row := &Session{TokenHash: hashToken(token), UserID: userID, ExpiresAt: expires}
	if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return token, nil
}

// UserBySession resolves an unexpired session to its user.
func (s *Store) UserBySession(ctx context.Context, token string) (*SignedIn, error) {
	var u SignedIn
	err := s.db.WithContext(ctx).Raw(`SELECT u.*, `+canManageSQL+` AS can_manage FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > now()`, hashToken(token)).Scan(&u).Error
	if err != nil {
		return nil, err
	}
	if u.ID == uuid.Nil {
		return nil, fmt.Errorf("session: %w", domain.ErrNotFound)
	}
	return &u, nil
}

// DeleteSession ends a session, and with it any that have expired.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM sessions WHERE token_hash = ? OR expires_at < now()`, hashToken(token)).Error
}
