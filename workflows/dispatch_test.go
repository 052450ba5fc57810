package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
)

// Kicks are coalesced: those during a pass cause one more pass; a full pass loops on
// its own; with no kick for dispatchIdle the dispatcher completes.
func TestDispatcherCoalescesKicksAndLoopsWhileFull(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(DispatchWorkflow, workflow.RegisterOptions{Name: DispatchWorkflowName})
	registerActivities(env)
	passes := 0
	env.OnActivity(dispatching.Dispatch, mock.Anything).Return(func(context.Context) (activities.DispatchResult, error) {
		passes++
		switch passes {
		case 1:
			return activities.DispatchResult{Offers: 500, More: true}, nil // full: go again
		default:
			return activities.DispatchResult{Offers: 1}, nil
		}
	})
	for i := 0; i < 5; i++ { // five kicks while idle at the 10th second: one pass
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalKick, nil) }, 10*time.Second)
	}
	start := env.Now()
	env.ExecuteWorkflow(DispatchWorkflow)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// Two passes for the start (the first was full), then the five kicks: a
	// kick during a pass causes one more pass, never one per kick.
	if burst := passes - 2; burst < 1 || burst > 2 {
		t.Fatalf("five kicks caused %d passes, want 1 or 2 (coalesced)", burst)
	}
	if took := env.Now().Sub(start); took < dispatchIdle || took > dispatchIdle+11*time.Second {
		t.Fatalf("dispatcher completed after %s, want one idle period after the last pass", took)
	}
}
