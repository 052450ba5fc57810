package domain

import (
	"errors"
	"fmt"
)

// Domain errors. Wrap one with context (fmt.Errorf("...: %w", ErrConflict));
// the API maps each to one status code, in one place.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid")
	// ErrUnavailable: a dependency (PostgreSQL, Temporal) does not answer
	// right now; the same request may succeed later.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// Error kinds name domain errors across process boundaries: they are the
// types of Temporal application errors raised by activities and update
// handlers, and are read back into the errors above.
const (
	KindNotFound  = "NotFound"
	KindConflict  = "Conflict"
	KindForbidden = "Forbidden"
	KindInvalid   = "Invalid"
	// KindPermanentSend marks a send or download the provider refused for
	// good; it is recorded on the message and never retried.
	KindPermanentSend = "PermanentSendFailure"
)

var kinds = []struct {
	kind string
	err  error
}{
	{KindNotFound, ErrNotFound},
	{KindConflict, ErrConflict},
	{KindForbidden, ErrForbidden},
	{KindInvalid, ErrInvalid},
}

// KindOf names the kind of a domain error, "" for any other error.
func KindOf(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return ""
}

// FromKind rebuilds a domain error from its kind and message; an unknown
// kind gives nil.
func FromKind(kind, message string) error {
	for _, k := range kinds {
		if k.kind == kind {
			return fmt.Errorf("%s: %w", message, k.err)
		}
	}
	return nil
}
