package models_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

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

// A token and a session resolve to their user with the right to manage
// chats, held directly or through a role, in one read.
func TestSignedInUserAndTheRightToManageChats(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	direct := &models.User{Name: "direct", Email: "direct@example.com", Status: domain.AgentInactive, CanManageChats: true}
	viaRole := &models.User{Name: "role", Email: "role@example.com", Status: domain.AgentInactive}
	plain := &models.User{Name: "plain", Email: "plain@example.com", Status: domain.AgentInactive}
	for _, u := range []*models.User{direct, viaRole, plain} {
		f.must(f.s.CreateUser(f.ctx, u))
	}
	supervisors := &models.Role{Name: "Supervisors", CanManageChats: true}
	f.must(f.s.CreateRole(f.ctx, supervisors))
	f.must(f.s.AddRoleMember(f.ctx, supervisors.ID, viaRole.ID))
	readers := &models.Role{Name: "Readers"}
	f.must(f.s.CreateRole(f.ctx, readers))
	f.must(f.s.AddRoleMember(f.ctx, readers.ID, plain.ID))

	for _, c := range []struct {
		u    *models.User
		want bool
	}{{direct, true}, {viaRole, true}, {plain, false}} {
		tok, plaintext, err := f.s.CreateToken(f.ctx, c.u.ID, "t")
		f.must(err)
		byToken, err := f.s.UserByToken(f.ctx, plaintext)
		f.must(err)
		session, err := f.s.CreateSession(f.ctx, c.u.ID, time.Now().Add(time.Hour))
		f.must(err)
		bySession, err := f.s.UserBySession(f.ctx, session)
		f.must(err)
		for _, got := range []*models.SignedIn{byToken, bySession} {
			if got.ID != c.u.ID || got.Email != c.u.Email || got.CanManage != c.want {
				t.Fatalf("%s: signed in as %s (%s), can manage %v; want %s, %v", c.u.Name, got.ID, got.Email, got.CanManage, c.u.ID, c.want)
			}
		}
		f.must(f.s.RevokeToken(f.ctx, c.u.ID, tok.ID))
		if _, err := f.s.UserByToken(f.ctx, plaintext); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s: revoked token: %v, want not found", c.u.Name, err)
		}
	}
}
