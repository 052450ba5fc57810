package models_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Only a user still referenced is a conflict; other failures pass through.
func TestDeleteUserConflictOnlyWhenReferenced(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	busy := f.agent("busy", nil, false)
	f.accept(f.chat("c1"), busy)
	if err := f.s.DeleteUser(f.ctx, busy); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("deleting a user who handled a chat: %v, want a conflict", err)
	}
	idle := f.agent("idle", nil, false)
	if err := f.s.DeleteUser(f.ctx, idle); err != nil {
		t.Fatalf("deleting a user without chats: %v", err)
	}
	if err := f.s.DeleteUser(f.ctx, idle); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleting it again: %v, want not found", err)
	}

	outage := fmt.Errorf("%w: %w", domain.ErrUnavailable, &pgconn.PgError{Code: "57P01", Message: "terminating connection"})
	if err := models.DeleteUserError(outage); errors.Is(err, domain.ErrConflict) || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("an outage became %v; want it passed through as unavailable", err)
	}
	if err := models.DeleteUserError(&pgconn.PgError{Code: "42501", Message: "permission denied"}); errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a permission error became a conflict: %v", err)
	}
	if err := models.DeleteUserError(&pgconn.PgError{Code: "23503", Message: "violates foreign key constraint"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a foreign-key violation: %v, want a conflict", err)
	}
}
