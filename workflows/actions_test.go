package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// actionEnv is a time-skipping environment with the action workflows and a
// stand-in for an action written elsewhere ("Elsewhere"), whose behaviour
// the test gives.
func actionEnv(t *testing.T, elsewhere func(workflow.Context, ActionInput) (string, error)) (*testsuite.TestWorkflowEnvironment, *[]activities.OutcomeRequest) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ActionRunWorkflow, workflow.RegisterOptions{Name: ActionRunWorkflowName})
	env.RegisterWorkflowWithOptions(NoCodeAction, workflow.RegisterOptions{Name: NoCodeActionName})
	env.RegisterWorkflowWithOptions(CreateCaseFromChat, workflow.RegisterOptions{Name: CreateCaseFromChatName})
	if elsewhere != nil {
		env.RegisterWorkflowWithOptions(elsewhere, workflow.RegisterOptions{Name: "Elsewhere"})
	}
	actionActs.Register(env)
	var mu sync.Mutex
	outcomes := &[]activities.OutcomeRequest{}
	env.OnActivity(actionActs.RecordActionOutcome, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.OutcomeRequest) error {
		mu.Lock()
		defer mu.Unlock()
		*outcomes = append(*outcomes, r)
		return nil
	})
	return env, outcomes
}

func runInput(workflowType string) ActionRunInput {
	return ActionRunInput{RunID: "run-1", WorkflowType: workflowType, TaskQueue: "elsewhere", StartTimeout: time.Minute,
		Input: ActionInput{ChatID: "chat-1", ContactID: "contact-1", ActionID: "action-1", AgentID: "agent-1", QueueID: "queue-1", ChannelID: "channel-1"}}
}

func TestActionRunRecordsTheResultOfTheActionWorkflow(t *testing.T) {
	var got ActionInput
	env, outcomes := actionEnv(t, func(ctx workflow.Context, in ActionInput) (string, error) {
		got = in
		if id := workflow.GetInfo(ctx).WorkflowExecution.ID; id != "action/run-1" {
			return "", temporal.NewApplicationError("workflow ID "+id, "Test")
		}
		return "manager notified", nil
	})
	env.OnActivity(actionActs.AwaitActionStarted, mock.Anything, mock.Anything).Return(true, nil)
	env.ExecuteWorkflow(ActionRunWorkflow, runInput("Elsewhere"))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got != runInput("").Input {
		t.Fatalf("the action workflow got %+v", got)
	}
	if len(*outcomes) != 1 || (*outcomes)[0].Status != domain.RunCompleted || (*outcomes)[0].Result != "manager notified" {
		t.Fatalf("outcomes: %+v", *outcomes)
	}
}

func TestActionRunRecordsTheActionWorkflowsError(t *testing.T) {
	env, outcomes := actionEnv(t, func(workflow.Context, ActionInput) (string, error) {
		return "", temporal.NewNonRetryableApplicationError("the invoice is paid already", "Refused", nil)
	})
	env.OnActivity(actionActs.AwaitActionStarted, mock.Anything, mock.Anything).Return(true, nil)
	env.ExecuteWorkflow(ActionRunWorkflow, runInput("Elsewhere"))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(*outcomes) != 1 || (*outcomes)[0].Status != domain.RunFailed || (*outcomes)[0].Error != "the invoice is paid already" {
		t.Fatalf("outcomes: %+v", *outcomes)
	}
}

func TestActionRunTimesOutWhenNoWorkerStartsTheWorkflow(t *testing.T) {
	env, outcomes := actionEnv(t, func(ctx workflow.Context, _ ActionInput) (string, error) {
		return "", workflow.Sleep(ctx, time.Hour)
	})
	env.OnActivity(actionActs.AwaitActionStarted, mock.Anything, mock.Anything).Return(false, nil)
	var terminated activities.TerminateRequest
	env.OnActivity(actionActs.TerminateAction, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.TerminateRequest) error {
		terminated = r
		return nil
	})
	env.ExecuteWorkflow(ActionRunWorkflow, runInput("Elsewhere"))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if terminated.WorkflowID != "action/run-1" {
		t.Fatalf("terminated %+v", terminated)
	}
	if len(*outcomes) != 1 || (*outcomes)[0].Status != domain.RunTimedOut ||
		!strings.Contains((*outcomes)[0].Error, "no worker started workflow Elsewhere on task queue elsewhere within 1m0s") {
		t.Fatalf("outcomes: %+v", *outcomes)
	}
}

func TestCreateCaseFromChatReadsItsRunFromTheWorkflowID(t *testing.T) {
	env, _ := actionEnv(t, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ActionWorkflowID("run-7")})
	env.OnActivity(actionActs.CreateCaseForRun, mock.Anything, activities.CaseRequest{RunID: "run-7"}).Return("CS-000007", nil)
	env.ExecuteWorkflow(CreateCaseFromChat, runInput("").Input)
	var number string
	if err := env.GetWorkflowResult(&number); err != nil || number != "CS-000007" {
		t.Fatalf("result %q, %v", number, err)
	}
}

// A no-code run: each step is an activity given the outputs of the earlier
// ones; a wait is a timer (an hour, skipped here); a failing step fails the
// run naming the step.
func TestNoCodeActionRunsStepsInOrderWithTheirOutputs(t *testing.T) {
	env, _ := actionEnv(t, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ActionWorkflowID("run-9")})
	env.OnActivity(actionActs.LoadNoCodePlan, mock.Anything, mock.Anything).Return(activities.NoCodePlan{Steps: []activities.PlanStep{
		{Type: "http", Key: "crm"}, {Type: "wait", Key: "step2", Wait: time.Hour}, {Type: "note", Key: "step3"},
	}}, nil)
	var requests []activities.StepRequest
	var times []time.Time
	env.OnActivity(actionActs.RunNoCodeStep, mock.Anything, mock.Anything).Return(func(ctx context.Context, r activities.StepRequest) (map[string]string, error) {
		requests = append(requests, r)
		times = append(times, env.Now())
		if r.Index == 0 {
			return map[string]string{"ticket": "T-1"}, nil
		}
		return map[string]string{}, nil
	})
	start := env.Now()
	env.ExecuteWorkflow(NoCodeAction, runInput("").Input)
	var summary string
	if err := env.GetWorkflowResult(&summary); err != nil || summary != "3 steps done" {
		t.Fatalf("result %q, %v", summary, err)
	}
	if len(requests) != 2 || requests[0].Index != 0 || requests[1].Index != 2 || requests[1].RunID != "run-9" ||
		requests[1].Outputs["crm"]["ticket"] != "T-1" {
		t.Fatalf("steps: %+v", requests)
	}
	if times[1].Sub(start) < time.Hour {
		t.Fatalf("the third step ran %s after the start, before the wait was over", times[1].Sub(start))
	}
}

func TestNoCodeActionFailsNamingTheStep(t *testing.T) {
	env, _ := actionEnv(t, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ActionWorkflowID("run-10")})
	env.OnActivity(actionActs.LoadNoCodePlan, mock.Anything, mock.Anything).Return(activities.NoCodePlan{Steps: []activities.PlanStep{
		{Type: "note", Key: "step1"}, {Type: "http", Key: "step2"},
	}}, nil)
	env.OnActivity(actionActs.RunNoCodeStep, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.StepRequest) (map[string]string, error) {
		if r.Index == 1 {
			return nil, temporal.NewNonRetryableApplicationError("127.0.0.1 is a loopback address", domain.KindForbidden, nil)
		}
		return map[string]string{}, nil
	})
	env.ExecuteWorkflow(NoCodeAction, runInput("").Input)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "step 2 (http): 127.0.0.1 is a loopback address") {
		t.Fatalf("error: %v", err)
	}
}
