// Package activities holds every side effect the workflows need, grouped by
// domain: the conversation's records (Conversation), replies to providers
// (Delivery), downloads and handovers (Media) and routing (Dispatching).
// Each group holds only the services it uses and is registered on its own.
// Every activity is idempotent; a domain refusal is a non-retryable error of
// its domain.Kind, anything else (the database away) is retried.
//
// Request and result types are recorded in workflow histories: their JSON
// field names stay as they are.
package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/domain"
)

// Registry is what activity groups register on: a worker or a test environment.
type Registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// register adds a group's methods as activities named after them (the names
// histories record); Register itself is not one.
func register(r Registry, group any) {
	r.RegisterActivityWithOptions(group, activity.RegisterOptions{SkipInvalidStructFunctions: true})
}

// temporalError turns a domain refusal into a non-retryable application error
// of its kind, which the workflow and the API understand; other errors stay
// retryable.
func temporalError(err error) error {
	if kind := domain.KindOf(err); kind != "" {
		return temporal.NewNonRetryableApplicationError(err.Error(), kind, err)
	}
	return err
}

// failed logs an activity's failure with the IDs it concerns, then returns it
// as temporalError does.
func failed(ctx context.Context, err error, ids ...any) error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, context.Canceled) {
		activity.GetLogger(ctx).Warn("activity failed", append(ids, "Error", err)...)
	}
	return temporalError(err)
}

// passing logs a provider's failure that a later attempt may overcome (after
// retryAfter when the provider says; 0: the retry policy's backoff), then
// returns it retryable and benign: it is counted (omnichat_sends) and logged
// here once, as a warning, and the SDK does not log every attempt again as an
// error. The attempt that gives up fails for good, and that is an error.
func passing(ctx context.Context, kind string, err error, retryAfter time.Duration, ids ...any) error {
	activity.GetLogger(ctx).Warn("provider failed; retrying", append(ids, "Kind", kind, "Error", err)...)
	return temporal.NewApplicationErrorWithOptions(err.Error(), kind,
		temporal.ApplicationErrorOptions{Category: temporal.ApplicationErrorCategoryBenign, NextRetryDelay: retryAfter, Cause: err})
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s %q is not a UUID", field, s), domain.KindInvalid, nil)
	}
	return id, nil
}

// permanent is a provider's refusal for good: recorded, never retried.
func permanent(reason string) error {
	return temporal.NewNonRetryableApplicationError(reason, domain.KindPermanentSend, nil)
}
