package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/nocode"
)

// The action rows services hand out.
type (
	Action     = models.Action
	ActionRun  = models.ActionRun
	Case       = models.Case
	CaseFilter = models.CaseFilter
)

// ActionRuntime starts the workflow that carries out and watches one run.
type ActionRuntime interface {
	// StartActionRun starts the run's workflow unless it was started already.
	StartActionRun(ctx context.Context, run ActionRunStart) error
}

// ActionRunStart is a run as its workflow takes it. TaskQueue "" is
// omnichat's own (built-in and no-code actions).
type ActionRunStart struct {
	RunID                                                    uuid.UUID
	WorkflowType                                             string
	TaskQueue                                                string
	ChatID, ContactID, ActionID, AgentID, QueueID, ChannelID uuid.UUID
}

// Actions owns chat actions and their runs: admins configure them, the
// agent of a chat runs them, the run's workflow records the outcome.
type Actions struct {
	store   *models.Store
	runtime ActionRuntime
	chats   *Chats
	cases   *Cases
	caller  *nocode.Caller
	logger  *slog.Logger
}

// ActionSpec is what an action runs: exactly one of a workflow (type and
// task queue) and a no-code definition.
type ActionSpec struct {
	WorkflowType string
	TaskQueue    string
	NoCode       json.RawMessage
}

// NewAction describes an action to create.
type NewAction struct {
	Caption string
	QueueID *uuid.UUID
	Enabled *bool
	ActionSpec
}

// ActionPatch changes an action; ClearQueue makes it queue-less.
type ActionPatch struct {
	Caption    *string
	QueueID    *uuid.UUID
	ClearQueue bool
	Enabled    *bool
	ActionSpec
}

var (
	workflowTypePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]{0,199}$`)
	taskQueuePattern    = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,200}$`)
)

// List lists every action.
func (a *Actions) List(ctx context.Context) ([]Action, error) { return a.store.ListActions(ctx) }

// Get loads an action.
func (a *Actions) Get(ctx context.Context, id uuid.UUID) (*Action, error) {
	return a.store.GetAction(ctx, id)
}

// Delete deletes an action; its past runs keep their records.
func (a *Actions) Delete(ctx context.Context, id uuid.UUID) error {
	return a.store.DeleteAction(ctx, id)
}

// Create adds an action after checking its queue, what it runs and, for a
// no-code definition, every step.
func (a *Actions) Create(ctx context.Context, in NewAction) (*Action, error) {
	act := &Action{Caption: strings.TrimSpace(in.Caption), QueueID: in.QueueID, Enabled: in.Enabled == nil || *in.Enabled}
	if act.Caption == "" {
		return nil, domain.InvalidField("caption", "is required")
	}
	if err := a.checkQueue(ctx, in.QueueID); err != nil {
		return nil, err
	}
	if err := a.applySpec(ctx, act, in.ActionSpec); err != nil {
		return nil, err
	}
	if act.Kind == "" {
		return nil, &domain.FieldsError{Fields: []domain.FieldProblem{{Field: "workflow_type", Message: "give a workflow (workflow_type and task_queue) or a no-code definition (nocode)"}}}
	}
	return act, captionTaken(a.store.CreateAction(ctx, act))
}

// captionTaken names the caption when the store refuses a duplicate in the queue.
func captionTaken(err error) error {
	if errors.Is(err, domain.ErrConflict) {
		return &domain.FieldsError{Conflict: true, Fields: []domain.FieldProblem{{Field: "caption", Message: "is used by another action of this queue"}}}
	}
	return err
}

// Update changes an action. The built-in action's caption, queue and
// enabled flag may change; what it runs may not.
func (a *Actions) Update(ctx context.Context, id uuid.UUID, p ActionPatch) (*Action, error) {
	act, err := a.store.GetAction(ctx, id)
	if err != nil {
		return nil, err
	}
	cols := map[string]any{}
	if p.Caption != nil {
		c := strings.TrimSpace(*p.Caption)
		if c == "" {
			return nil, domain.InvalidField("caption", "must not be empty")
		}
		cols["caption"] = c
	}
	if p.QueueID != nil {
		if err := a.checkQueue(ctx, p.QueueID); err != nil {
			return nil, err
		}
		cols["queue_id"] = *p.QueueID
	}
	if p.ClearQueue {
		cols["queue_id"] = nil
	}
	setIf(cols, "enabled", p.Enabled)
	if p.WorkflowType != "" || p.TaskQueue != "" || len(p.NoCode) > 0 {
		if act.Kind == domain.ActionBuiltin {
			return nil, domain.InvalidField("workflow_type", "a built-in action runs what it is built to run")
		}
		spec := p.ActionSpec
		if len(spec.NoCode) == 0 && act.Kind == domain.ActionWorkflow {
			spec.WorkflowType, spec.TaskQueue = cmpOr(spec.WorkflowType, act.WorkflowType), cmpOr(spec.TaskQueue, act.TaskQueue)
		}
		next := *act
		next.Definition = act.Definition
		if err := a.applySpec(ctx, &next, spec); err != nil {
			return nil, err
		}
		cols["kind"], cols["workflow_type"], cols["task_queue"], cols["definition"] = next.Kind, next.WorkflowType, next.TaskQueue, next.Definition
	}
	if len(cols) == 0 {
		return act, nil
	}
	act, err = a.store.UpdateAction(ctx, id, cols)
	return act, captionTaken(err)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (a *Actions) checkQueue(ctx context.Context, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	if _, err := a.store.GetQueue(ctx, *id); errors.Is(err, domain.ErrNotFound) {
		return domain.InvalidField("queue_id", "is not a known queue")
	} else if err != nil {
		return err
	}
	return nil
}

// applySpec sets what the action runs from spec, validated. A no-code
// definition keeps its stored secrets where the edit sends them redacted.
func (a *Actions) applySpec(ctx context.Context, act *Action, spec ActionSpec) error {
	hasWorkflow := spec.WorkflowType != "" || spec.TaskQueue != ""
	switch {
	case hasWorkflow && len(spec.NoCode) > 0:
		return domain.InvalidField("nocode", "give a workflow or a no-code definition, not both")
	case hasWorkflow:
		var fields []domain.FieldProblem
		if !workflowTypePattern.MatchString(spec.WorkflowType) {
			fields = append(fields, domain.FieldProblem{Field: "workflow_type", Message: "must be a workflow type name: letters, digits, _ . : / - (at most 200), not starting with a digit"})
		}
		if !taskQueuePattern.MatchString(spec.TaskQueue) {
			fields = append(fields, domain.FieldProblem{Field: "task_queue", Message: "must be a task queue name: letters, digits, _ . : / - (1 to 200)"})
		}
		if len(fields) > 0 {
			return &domain.FieldsError{Fields: fields}
		}
		act.Kind, act.WorkflowType, act.TaskQueue, act.Definition = domain.ActionWorkflow, spec.WorkflowType, spec.TaskQueue, nil
	case len(spec.NoCode) > 0:
		def, err := nocode.Parse(spec.NoCode)
		var nerrs nocode.Errors
		if errors.As(err, &nerrs) {
			fe := &domain.FieldsError{BadRequest: true}
			for _, e := range nerrs {
				fe.Fields = append(fe.Fields, domain.FieldProblem{Field: e.Field, Message: e.Message})
			}
			return fe
		}
		if err != nil {
			return err
		}
		allow, err := a.allowList(ctx)
		if err != nil {
			return err
		}
		for i, s := range def.Steps {
			if s.Type == nocode.StepHTTP && !strings.Contains(s.URL, "{{") {
				if err := nocode.CheckTarget(s.URL, allow); err != nil {
					return &domain.FieldsError{BadRequest: true, Fields: []domain.FieldProblem{{Field: fmt.Sprintf("nocode.steps[%d].url", i), Message: err.Error()}}}
				}
			}
		}
		if act.Kind == domain.ActionNoCode {
			nocode.KeepSecrets(def, act.Definition)
		}
		raw, err := json.Marshal(def)
		if err != nil {
			return err
		}
		act.Kind, act.WorkflowType, act.TaskQueue, act.Definition = domain.ActionNoCode, "", "", raw
	}
	return nil
}

// allowList reads the ActionHttpAllowList setting as a set of hosts.
func (a *Actions) allowList(ctx context.Context) (map[string]bool, error) {
	v, err := a.store.GetSetting(ctx, models.SettingActionHTTPAllowList)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range strings.Split(v, ",") {
		if h = strings.Trim(strings.TrimSpace(h), "[]"); h != "" {
			out[h] = true
		}
	}
	return out, nil
}

// ForChat lists the actions an agent may run on a chat they see: the enabled
// actions of its queue and the queue-less ones.
func (a *Actions) ForChat(ctx context.Context, p *Principal, chatID uuid.UUID) ([]Action, error) {
	row, err := a.chats.Get(ctx, p, chatID)
	if err != nil {
		return nil, err
	}
	return a.store.QueueActions(ctx, row.QueueID)
}

// Run starts an action on a chat for its agent: the run is recorded once
// per idempotency key (a retried request finds it) and its workflow is
// started, or found started. Only the agent of an in-progress chat may run
// actions on it.
func (a *Actions) Run(ctx context.Context, p *Principal, chatID, actionID uuid.UUID, key string) (*ActionRun, error) {
	row, err := a.chats.Get(ctx, p, chatID)
	if err != nil {
		return nil, err
	}
	if row.Status == domain.ChatClosed {
		return nil, fmt.Errorf("chat is closed: %w", domain.ErrConflict)
	}
	if row.Status != domain.ChatInProgress || row.AgentID == nil || *row.AgentID != p.ID {
		return nil, fmt.Errorf("only the agent the chat is assigned to may run actions on it: %w", domain.ErrForbidden)
	}
	act, err := a.store.GetAction(ctx, actionID)
	if err != nil {
		return nil, err
	}
	if !act.Enabled || (act.QueueID != nil && *act.QueueID != row.QueueID) {
		return nil, fmt.Errorf("action: %w", domain.ErrNotFound)
	}
	if key == "" {
		key = uuid.NewString()
	}
	run := &ActionRun{ID: uuid.New(), ActionID: &act.ID, Caption: act.Caption, Kind: act.Kind, WorkflowType: act.WorkflowType,
		TaskQueue: act.TaskQueue, Definition: act.Definition, ChatID: row.ID, AgentID: p.ID, IdempotencyKey: key,
		Status: domain.RunStarted, CreatedAt: time.Now().UTC()}
	switch act.Kind {
	case domain.ActionBuiltin:
		run.WorkflowType = act.Builtin
	case domain.ActionNoCode:
		run.WorkflowType = domain.NoCodeWorkflow
	}
	stored, _, err := a.store.CreateRun(ctx, run)
	if err != nil {
		return nil, err
	}
	if stored.ActionID == nil || *stored.ActionID != act.ID {
		return nil, fmt.Errorf("this Idempotency-Key was used for another action on this chat: %w", domain.ErrConflict)
	}
	err = a.runtime.StartActionRun(ctx, ActionRunStart{RunID: stored.ID, WorkflowType: stored.WorkflowType, TaskQueue: stored.TaskQueue,
		ChatID: row.ID, ContactID: row.ContactID, ActionID: act.ID, AgentID: p.ID, QueueID: row.QueueID, ChannelID: row.ChannelID})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// Runs lists the runs of a chat the agent sees, oldest first.
func (a *Actions) Runs(ctx context.Context, p *Principal, chatID uuid.UUID) ([]ActionRun, error) {
	row, err := a.chats.Get(ctx, p, chatID)
	if err != nil {
		return nil, err
	}
	return a.store.ChatRuns(ctx, row.ID)
}

// maxOutcomeLen bounds a run's recorded result or error.
const maxOutcomeLen = 2000

// Finish records a run's outcome and posts it into the chat as a system
// note, once: a retried call changes nothing.
func (a *Actions) Finish(ctx context.Context, runID uuid.UUID, status, result, errMsg string) error {
	run, err := a.store.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	result, errMsg = clip(result), clip(errMsg)
	var note string
	switch status {
	case domain.RunCompleted:
		note = fmt.Sprintf("Action %q completed", run.Caption)
		if run.Kind == domain.ActionBuiltin && run.WorkflowType == domain.BuiltinCreateCase && result != "" {
			note = "Case " + result + " created"
		} else if result != "" {
			note += ": " + result
		}
	case domain.RunFailed:
		note = fmt.Sprintf("Action %q failed: %s", run.Caption, errMsg)
	case domain.RunTimedOut:
		note = fmt.Sprintf("Action %q timed out: %s", run.Caption, errMsg)
	default:
		return fmt.Errorf("run outcome %q: %w", status, domain.ErrInvalid)
	}
	_, err = a.store.FinishRun(ctx, runID, status, result, errMsg, note)
	return err
}

func clip(s string) string {
	if r := []rune(s); len(r) > maxOutcomeLen {
		return string(r[:maxOutcomeLen]) + "…"
	}
	return s
}

// GetRun loads a run (for its workflow's activities).
func (a *Actions) GetRun(ctx context.Context, runID uuid.UUID) (*ActionRun, error) {
	return a.store.GetRun(ctx, runID)
}

// Cases owns cases: made from chats by actions, read by the agents of the
// case's queue and by admins.
type Cases struct {
	store *models.Store
}

// CreateForRun makes the case of a run (the built-in action), once per run.
func (c *Cases) CreateForRun(ctx context.Context, runID uuid.UUID) (*Case, error) {
	run, err := c.store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	return c.store.CreateCase(ctx, models.CaseInput{SourceKey: runID.String(), RunID: &run.ID, ChatID: run.ChatID})
}

// createForStep makes the case of a no-code step, once per run and step.
func (c *Cases) createForStep(ctx context.Context, run *ActionRun, step int, subject string) (*Case, error) {
	return c.store.CreateCase(ctx, models.CaseInput{SourceKey: fmt.Sprintf("%s/%d", run.ID, step), RunID: &run.ID, ChatID: run.ChatID, Subject: subject})
}

// List lists the cases the user sees, newest first.
func (c *Cases) List(ctx context.Context, p *Principal, f CaseFilter) ([]Case, error) {
	return c.store.ListCases(ctx, p.ID, p.Admin, f)
}

// Get loads a case the user sees.
func (c *Cases) Get(ctx context.Context, p *Principal, id uuid.UUID) (*Case, error) {
	return c.store.VisibleCase(ctx, p.ID, p.Admin, id)
}
