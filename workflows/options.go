package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// dbActivity is for database activities: short, retried until the database answers,
// never retried on a domain refusal.
var dbActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        200 * time.Millisecond,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		NonRetryableErrorTypes: []string{ErrTypeConflict, ErrTypeNotFound, ErrTypeInvalid},
	},
}

// localDB is for database activities run as local activities: they take
// milliseconds, so running them in the worker's own workflow task saves the
// round trips of an activity task through the server on every message.
var localDB = workflow.LocalActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	RetryPolicy:         dbActivity.RetryPolicy,
}

// deliverActivity sends through a provider: backoff, a bounded number of
// attempts, no retry of a permanent refusal.
var deliverActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        8,
		NonRetryableErrorTypes: []string{ErrTypePermanentSend, ErrTypeNotFound, ErrTypeInvalid},
	},
}

// fetchActivity downloads from a provider (attachments, profiles, thread
// handover): a few attempts, then the chat goes on without it.
var fetchActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        2 * time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        5,
		NonRetryableErrorTypes: []string{ErrTypePermanentSend, ErrTypeNotFound, ErrTypeInvalid},
	},
}

// dispatchActivity offers waiting chats; it heartbeats the offers it recorded.
var dispatchActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// commandError turns an activity failure into an update failure that keeps
// the domain error type, so the API can answer 409, 404 or 422.
func commandError(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case ErrTypeConflict, ErrTypeNotFound, ErrTypeInvalid, ErrTypeForbidden:
			return temporal.NewApplicationError(app.Message(), app.Type())
		}
	}
	return err
}

func conflict(msg string) error  { return temporal.NewApplicationError(msg, ErrTypeConflict) }
func forbidden(msg string) error { return temporal.NewApplicationError(msg, ErrTypeForbidden) }
func invalid(msg string) error   { return temporal.NewApplicationError(msg, ErrTypeInvalid) }
