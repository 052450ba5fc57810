package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/domain"
)

// untilTheDatabaseAnswers bounds database work in effect not at all: a
// message the webhook acknowledged must be stored, however long PostgreSQL
// is away. Retries back off to at most dbRetryCeiling apart.
const (
	untilTheDatabaseAnswers = 10 * 365 * 24 * time.Hour
	dbRetryCeiling          = 30 * time.Second
)

// domainRefusals are the errors retrying cannot change.
var domainRefusals = []string{domain.KindConflict, domain.KindNotFound, domain.KindInvalid, domain.KindForbidden}

// dbRetry retries until the database answers, never a domain refusal.
var dbRetry = &temporal.RetryPolicy{
	InitialInterval:        200 * time.Millisecond,
	BackoffCoefficient:     2,
	MaximumInterval:        dbRetryCeiling,
	NonRetryableErrorTypes: domainRefusals,
}

// dbActivity is for database work in update handlers: each attempt is short,
// attempts go on until the database answers.
var dbActivity = workflow.ActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	RetryPolicy:            dbRetry,
}

// localDB is for the chat's database work outside update handlers, run as
// local activities: they take milliseconds, so running them in the worker's
// own workflow task saves an activity task's round trips on every message.
// The SDK bounds a local activity's retries by ScheduleToCloseTimeout (and
// by StartToCloseTimeout when that is unset), so it is set explicitly.
var localDB = workflow.LocalActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	RetryPolicy:            dbRetry,
}

// providerRetry is for work with a provider: the activity counts the
// provider's own failures and gives up after a few (recording why); failures
// of the database are retried until it answers.
var providerRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: append([]string{domain.KindPermanentSend}, domainRefusals...),
}

// deliverActivity sends an agent's reply through its provider. The provider
// call itself is cut at 20 s (activities.Delivery), leaving the attempt time
// to record the outcome.
var deliverActivity = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	RetryPolicy:            providerRetry,
}

// fetchActivity downloads from a provider (attachments, profiles) or hands a
// thread back to a bot.
var fetchActivity = workflow.ActivityOptions{
	StartToCloseTimeout:    2 * time.Minute,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	RetryPolicy:            providerRetry,
}

// commandError turns an activity failure into an update failure that keeps
// the domain error type, so the API can answer 409, 404 or 422.
func commandError(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case domain.KindConflict, domain.KindNotFound, domain.KindInvalid, domain.KindForbidden:
			return temporal.NewApplicationError(app.Message(), app.Type())
		}
	}
	return err
}

func conflict(msg string) error  { return temporal.NewApplicationError(msg, domain.KindConflict) }
func forbidden(msg string) error { return temporal.NewApplicationError(msg, domain.KindForbidden) }
func invalid(msg string) error   { return temporal.NewApplicationError(msg, domain.KindInvalid) }
