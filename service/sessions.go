package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// ErrBadCredentials: the email is unknown, has no password, or the password is wrong.
var ErrBadCredentials = errors.New("email or password is wrong")

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// Sessions signs users in to the web panel with email and password.
type Sessions struct {
	store *models.Store
	// TTL is how long a session lasts.
	TTL time.Duration
	// checks bounds the bcrypt comparisons running at once, so a flood of
	// sign-ins cannot take every core.
	checks chan struct{}
	// dummy is compared against when the email is unknown, so both take as long.
	dummy func() []byte
}

func newSessions(store *models.Store, ttl time.Duration) *Sessions {
	dummy := sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("omnichat-no-such-user"), bcrypt.DefaultCost)
		return h
	})
	return &Sessions{store: store, TTL: ttl, checks: make(chan struct{}, 2), dummy: dummy}
}

// SetPassword sets a user's password (bcrypt) and ends their sessions.
func (s *Sessions) SetPassword(ctx context.Context, userID uuid.UUID, password string) error {
	if len(password) < MinPasswordLength || len(password) > 72 {
		return fmt.Errorf("password must be %d to 72 bytes long: %w", MinPasswordLength, domain.ErrInvalid)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.store.SetPasswordHash(ctx, userID, string(hash))
}

// SignIn checks email and password and opens a session: its token and expiry.
func (s *Sessions) SignIn(ctx context.Context, email, password string) (string, time.Time, error) {
	u, hash, err := s.store.PasswordHash(ctx, email)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return "", time.Time{}, err
	}
	select {
	case s.checks <- struct{}{}:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	ok := false
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummy(), []byte(password))
	} else {
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	<-s.checks
	if !ok {
		return "", time.Time{}, ErrBadCredentials
	}
	expires := time.Now().Add(s.TTL).UTC()
	token, err := s.store.CreateSession(ctx, u.ID, expires)
	return token, expires, err
}

// Authenticate resolves a session token; ErrNotFound when unknown or expired.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*Principal, error) {
	u, err := s.store.UserBySession(ctx, token)
	if err != nil {
		return nil, err
	}
	return principalOf(u), nil
}

// SignOut ends a session.
func (s *Sessions) SignOut(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, token)
}
