package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

var actionActs *activities.Actions

// actionDB is for the runs' database work: short attempts, retried until the
// database answers, never a domain refusal.
var actionDB = workflow.ActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	RetryPolicy:            dbRetry,
}

// ActionRunWorkflow carries out one run of a chat action: it starts the
// action's workflow, fails the run when no worker picks that workflow up in
// time, waits for its result and records the outcome in the chat.
func ActionRunWorkflow(ctx workflow.Context, in ActionRunInput) (string, error) {
	r := &actionRun{in: in}
	return r.run(ctx)
}

type actionRun struct {
	in ActionRunInput
}

func (r *actionRun) run(ctx workflow.Context) (string, error) {
	id := ActionWorkflowID(r.in.RunID)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		TaskQueue:             r.in.TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	})
	child := workflow.ExecuteChildWorkflow(cctx, r.in.WorkflowType, r.in.Input)
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		return r.finish(ctx, domain.RunFailed, nil, "the workflow could not be started: "+failureText(err))
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    r.in.StartTimeout + time.Minute,
		HeartbeatTimeout:       20 * time.Second,
		ScheduleToCloseTimeout: untilTheDatabaseAnswers,
		RetryPolicy:            dbRetry,
	})
	var started bool
	if err := workflow.ExecuteActivity(actx, actionActs.AwaitActionStarted,
		activities.AwaitStartedRequest{WorkflowID: id, RunID: exec.RunID, Within: r.in.StartTimeout}).Get(ctx, &started); err != nil {
		return "", err
	}
	if !started {
		reason := fmt.Sprintf("no worker started workflow %s on task queue %s within %s; is its worker running?",
			r.in.WorkflowType, r.in.TaskQueue, r.in.StartTimeout)
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, actionDB), actionActs.TerminateAction,
			activities.TerminateRequest{WorkflowID: id, RunID: exec.RunID, Reason: reason}).Get(ctx, nil); err != nil {
			return "", err
		}
		return r.finish(ctx, domain.RunTimedOut, nil, reason)
	}
	var result any
	if err := child.Get(ctx, &result); err != nil {
		return r.finish(ctx, domain.RunFailed, nil, failureText(err))
	}
	return r.finish(ctx, domain.RunCompleted, result, "")
}

func (r *actionRun) finish(ctx workflow.Context, status string, result any, errMsg string) (string, error) {
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, actionDB), actionActs.RecordActionOutcome,
		activities.OutcomeRequest{RunID: r.in.RunID, Status: status, Result: result, Error: errMsg}).Get(ctx, nil)
	return status, err
}

// failureText is what an agent reads about a failed action workflow: the
// innermost message (the workflow's own error), not Temporal's wrapping.
func failureText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var term *temporal.TerminatedError
	if errors.As(err, &term) {
		return "the workflow was terminated"
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "the workflow timed out"
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "the workflow was cancelled"
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err.Error()
}

// runOf reads an action workflow's run from its workflow ID.
func runOf(ctx workflow.Context) string {
	return strings.TrimPrefix(workflow.GetInfo(ctx).WorkflowExecution.ID, "action/")
}

// CreateCaseFromChat is the built-in "Create case" action: it makes a case
// from the chat and returns its number.
func CreateCaseFromChat(ctx workflow.Context, _ ActionInput) (string, error) {
	var number string
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, actionDB), actionActs.CreateCaseForRun,
		activities.CaseRequest{RunID: runOf(ctx)}).Get(ctx, &number)
	return number, err
}

// stepRetry is the retry policy of the no-code steps that only write to
// omnichat's database or go through a chat's workflow: retried for a while,
// never a domain refusal.
var stepRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        30 * time.Second,
	NonRetryableErrorTypes: domainRefusals,
}

// stepOptions gives each kind of step its own timeouts and retries: an
// HTTP call is tried three times, omnichat's own writes for ten minutes.
func stepOptions(stepType string) workflow.ActivityOptions {
	if stepType == "http" {
		return workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 3,
				NonRetryableErrorTypes: domainRefusals},
		}
	}
	return workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, ScheduleToCloseTimeout: 10 * time.Minute, RetryPolicy: stepRetry}
}

// NoCodeAction runs the no-code definition its run snapshotted, step by
// step: a wait is a timer, every other step an activity. It returns a
// summary of what it did.
func NoCodeAction(ctx workflow.Context, _ ActionInput) (string, error) {
	runID := runOf(ctx)
	var plan activities.NoCodePlan
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, actionDB), actionActs.LoadNoCodePlan,
		activities.CaseRequest{RunID: runID}).Get(ctx, &plan); err != nil {
		return "", err
	}
	outputs := map[string]map[string]string{}
	for i, s := range plan.Steps {
		if s.Type == "wait" {
			if err := workflow.NewTimerWithOptions(ctx, s.Wait, workflow.TimerOptions{Summary: "wait"}).Get(ctx, nil); err != nil {
				return "", err
			}
			continue
		}
		var out map[string]string
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, stepOptions(s.Type)), actionActs.RunNoCodeStep,
			activities.StepRequest{RunID: runID, Index: i, Outputs: outputs}).Get(ctx, &out)
		if err != nil {
			return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %d (%s): %s", i+1, s.Type, failureText(err)), "StepFailed", nil)
		}
		outputs[s.Key] = out
	}
	return fmt.Sprintf("%d steps done", len(plan.Steps)), nil
}
