package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
)

// dispatchIdle is how long the dispatcher waits for the next kick before it
// completes; staying up between kicks spares a busy system a workflow start
// per kick.
const dispatchIdle = time.Minute

// DispatchWorkflow serialises routing: every kick (a new chat, a close, an
// agent turning Active, ...) makes it run the Dispatch activity once more.
// Kicks that arrive while it runs are coalesced into the next pass. After
// dispatchIdle without a kick it completes, and the next kick starts it again.
func DispatchWorkflow(ctx workflow.Context) error {
	// Kicks are only taken with ReceiveAsync, so none is handed to a coroutine
	// that has not run yet when the workflow decides to complete.
	kicks := workflow.GetSignalChannel(ctx, SignalKick)
	ctx = workflow.WithActivityOptions(ctx, dispatchActivity)
	var a *activities.Activities
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
