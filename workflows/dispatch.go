package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
)

// DispatchWorkflow serialises routing: every kick (a new chat, a close, an
// agent turning Active, ...) makes it run the Dispatch activity once more.
// Kicks that arrive while it runs are coalesced into the next pass; with no
// kick left it completes, and the next kick starts it again.
func DispatchWorkflow(ctx workflow.Context) error {
	kicks := workflow.GetSignalChannel(ctx, SignalKick)
	ctx = workflow.WithActivityOptions(ctx, dispatchActivity)
	var a *activities.Activities
	for {
		for kicks.ReceiveAsync(nil) {
		}
		if err := workflow.ExecuteActivity(ctx, a.Dispatch).Get(ctx, nil); err != nil {
			return err
		}
		if !kicks.ReceiveAsync(nil) {
			return nil
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return workflow.NewContinueAsNewError(ctx, DispatchWorkflow)
		}
	}
}
