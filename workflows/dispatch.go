package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
)

// dispatcherActivity runs the dispatcher for a shift. Its heartbeat timeout
// is how soon another worker takes over when the dispatcher's worker dies.
var dispatcherActivity = workflow.ActivityOptions{
	StartToCloseTimeout:    activities.DispatcherShift + time.Minute,
	ScheduleToCloseTimeout: untilTheDatabaseAnswers,
	HeartbeatTimeout:       10 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// RoutingWorkflow keeps the dispatcher running: shift after shift of the
// RunDispatcher activity, which offers waiting chats whenever routing is
// woken. One runs per task queue (RoutingWorkflowID); workers start it.
func RoutingWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, dispatcherActivity)
	var a *activities.Dispatching
	for {
		if err := workflow.ExecuteActivity(ctx, a.RunDispatcher).Get(ctx, nil); err != nil {
			if cancelled(err) {
				return err
			}
			workflow.GetLogger(ctx).Error("dispatcher shift failed; starting another", "Error", err)
			if err := workflow.Sleep(ctx, 10*time.Second); err != nil {
				return err
			}
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return workflow.NewContinueAsNewError(ctx, RoutingWorkflow)
		}
	}
}

// dispatchActivity ran one pass of the dispatcher of earlier releases.
var dispatchActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// dispatchIdle is how long the dispatcher of earlier releases waited for the
// next kick before it completed.
const dispatchIdle = time.Minute

// DispatchWorkflow is the dispatcher of earlier releases: one pass per kick,
// completing after dispatchIdle without one. It is kept, unchanged, so that
// executions started before RoutingWorkflow finish; nothing starts it now.
func DispatchWorkflow(ctx workflow.Context) error {
	kicks := workflow.GetSignalChannel(ctx, SignalKick)
	ctx = workflow.WithActivityOptions(ctx, dispatchActivity)
	var a *activities.Dispatching
	for {
		for kicks.ReceiveAsync(nil) {
		}
		var res activities.DispatchResult
		if err := workflow.ExecuteActivity(ctx, a.Dispatch).Get(ctx, &res); err != nil {
			return err
		}
		if res.More || kicks.Len() > 0 {
			continue
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return workflow.NewContinueAsNewError(ctx, DispatchWorkflow)
		}
		tctx, cancel := workflow.WithCancel(ctx)
		kicked, err := workflow.AwaitWithTimeout(tctx, dispatchIdle, func() bool { return kicks.Len() > 0 })
		cancel()
		if err != nil {
			return err
		}
		if !kicked && kicks.Len() == 0 {
			return nil
		}
	}
}
