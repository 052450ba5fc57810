package domain

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindsRoundTrip(t *testing.T) {
	for _, err := range []error{ErrNotFound, ErrConflict, ErrForbidden, ErrInvalid} {
		wrapped := fmt.Errorf("chat 42: %w", err)
		kind := KindOf(wrapped)
		if kind == "" {
			t.Fatalf("%v has no kind", wrapped)
		}
		back := FromKind(kind, "chat 42")
		if !errors.Is(back, err) {
			t.Fatalf("kind %s came back as %v, want %v", kind, back, err)
		}
	}
	if KindOf(errors.New("disk on fire")) != "" || KindOf(ErrUnavailable) != "" {
		t.Fatal("errors outside the domain kinds must have no kind")
	}
	if FromKind("Bogus", "x") != nil {
		t.Fatal("an unknown kind must give nil")
	}
}
