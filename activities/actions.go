package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/omnichat/omnichat/nocode"
	"github.com/omnichat/omnichat/service"
)

// ActionWorkflows is what the run of an action asks of Temporal about the
// action's own workflow (implemented by chatcmd).
type ActionWorkflows interface {
	// Started reports whether a worker completed the workflow's first task
	// (or the workflow has ended).
	Started(ctx context.Context, workflowID, runID string) (bool, error)
	Terminate(ctx context.Context, workflowID, runID, reason string) error
}

// Actions carries out chat actions' runs: it watches the action's workflow
// start, records outcomes, makes cases and runs no-code steps.
type Actions struct {
	Actions   *service.Actions
	Cases     *service.Cases
	Workflows ActionWorkflows
}

// Register adds the group's activities to a worker.
func (a *Actions) Register(r Registry) { register(r, a) }

// AwaitStartedRequest names the action's workflow and how long it has to start.
type AwaitStartedRequest struct {
	WorkflowID string
	RunID      string
	Within     time.Duration
}

// awaitPoll is how often AwaitActionStarted looks.
const awaitPoll = 500 * time.Millisecond

// AwaitActionStarted waits until a worker has completed the first task of the
// action's workflow, or Within has passed since the activity was scheduled
// (false). It heartbeats while it waits.
func (a *Actions) AwaitActionStarted(ctx context.Context, req AwaitStartedRequest) (bool, error) {
	deadline := activity.GetInfo(ctx).ScheduledTime.Add(req.Within)
	for {
		ok, err := a.Workflows.Started(ctx, req.WorkflowID, req.RunID)
		if err != nil {
			return false, failed(ctx, err, "WorkflowID", req.WorkflowID)
		}
		if ok {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		activity.RecordHeartbeat(ctx)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(awaitPoll):
		}
	}
}

// TerminateRequest ends an action's workflow that did not start in time.
type TerminateRequest struct {
	WorkflowID string
	RunID      string
	Reason     string
}

// TerminateAction terminates the action's workflow; one already ended is left alone.
func (a *Actions) TerminateAction(ctx context.Context, req TerminateRequest) error {
	return failed(ctx, a.Workflows.Terminate(ctx, req.WorkflowID, req.RunID, req.Reason), "WorkflowID", req.WorkflowID)
}

// OutcomeRequest is a run's outcome. Result is whatever the action's
// workflow returned (any SDK's JSON); a string is recorded as it is.
type OutcomeRequest struct {
	RunID  string
	Status string
	Result any `json:",omitempty"`
	Error  string
}

// RecordActionOutcome records the run's outcome and posts it into its chat, once.
func (a *Actions) RecordActionOutcome(ctx context.Context, req OutcomeRequest) error {
	id, err := parseID("RunID", req.RunID)
	if err != nil {
		return err
	}
	return failed(ctx, a.Actions.Finish(ctx, id, req.Status, resultText(req.Result), req.Error), "RunID", req.RunID)
}

func resultText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// CaseRequest names the run whose case to make.
type CaseRequest struct {
	RunID string
}

// CreateCaseForRun makes the run's case (once per run, however often it is
// retried) and returns its number.
func (a *Actions) CreateCaseForRun(ctx context.Context, req CaseRequest) (string, error) {
	id, err := parseID("RunID", req.RunID)
	if err != nil {
		return "", err
	}
	c, err := a.Cases.CreateForRun(ctx, id)
	if err != nil {
		return "", failed(ctx, err, "RunID", req.RunID)
	}
	return c.Number, nil
}

// PlanStep is a no-code step as the workflow sees it: its type, its key for
// later steps and, for a wait, how long. Templates, URLs and secrets stay
// out of the workflow's history: each step's activity reads them.
type PlanStep struct {
	Type string
	Key  string
	Wait time.Duration `json:",omitempty"`
}

// NoCodePlan is a run's definition as the workflow runs it.
type NoCodePlan struct {
	Steps []PlanStep
}

// LoadNoCodePlan reads the definition the run snapshotted when it started.
func (a *Actions) LoadNoCodePlan(ctx context.Context, req CaseRequest) (NoCodePlan, error) {
	id, err := parseID("RunID", req.RunID)
	if err != nil {
		return NoCodePlan{}, err
	}
	def, err := a.Actions.Definition(ctx, id)
	if err != nil {
		return NoCodePlan{}, failed(ctx, err, "RunID", req.RunID)
	}
	var plan NoCodePlan
	for i, s := range def.Steps {
		p := PlanStep{Type: s.Type, Key: s.ID}
		if p.Key == "" {
			p.Key = fmt.Sprintf("step%d", i+1)
		}
		if s.Type == nocode.StepWait {
			p.Wait, _ = time.ParseDuration(s.Duration)
		}
		plan.Steps = append(plan.Steps, p)
	}
	return plan, nil
}

// StepRequest asks for one step of a run, with the outputs of earlier steps.
type StepRequest struct {
	RunID   string
	Index   int
	Outputs map[string]map[string]string
}

// RunNoCodeStep carries out one step and returns its outputs.
func (a *Actions) RunNoCodeStep(ctx context.Context, req StepRequest) (map[string]string, error) {
	id, err := parseID("RunID", req.RunID)
	if err != nil {
		return nil, err
	}
	out, err := a.Actions.RunStep(ctx, id, req.Index, req.Outputs)
	if err != nil {
		return nil, failed(ctx, err, "RunID", req.RunID, "Step", req.Index)
	}
	return out, nil
}
