// Package worker builds the Temporal worker that runs omnichat's workflows and activities.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/workflows"
)

// Options size the worker.
type Options struct {
	TaskQueue string
	// StickyCacheSize is process-wide in the SDK; 0 keeps the SDK default.
	StickyCacheSize int
	// Pollers is the number of workflow-task and of activity-task pollers; 0 keeps the SDK default (2).
	Pollers int
	// StopTimeout is how long a stopping worker lets running activities finish.
	StopTimeout time.Duration
	// Interceptors wrap the worker's workflows and activities (tests inject faults with them).
	Interceptors []interceptor.WorkerInterceptor
}

// Group is an activity group: it registers its activities itself.
type Group interface {
	Register(r activities.Registry)
}

// New builds a worker with every workflow and the given activity groups registered.
func New(tc client.Client, groups []Group, opts Options) worker.Worker {
	if opts.StickyCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(opts.StickyCacheSize)
	}
	w := worker.New(tc, opts.TaskQueue, worker.Options{
		MaxConcurrentWorkflowTaskPollers: opts.Pollers,
		MaxConcurrentActivityTaskPollers: opts.Pollers,
		WorkerStopTimeout:                opts.StopTimeout,
		Interceptors:                     opts.Interceptors,
	})
	RegisterWorkflows(w)
	for _, g := range groups {
		g.Register(w)
	}
	return w
}

// RegisterWorkflows adds omnichat's workflows to a registry: a worker, a
// replayer or a test environment.
func RegisterWorkflows(r interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(workflows.ChatWorkflow, workflow.RegisterOptions{Name: workflows.ChatWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.RoutingWorkflow, workflow.RegisterOptions{Name: workflows.RoutingWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.DispatchWorkflow, workflow.RegisterOptions{Name: workflows.DispatchWorkflowName})
	// Chat actions: a run's workflow, and the actions omnichat itself serves.
	r.RegisterWorkflowWithOptions(workflows.ActionRunWorkflow, workflow.RegisterOptions{Name: workflows.ActionRunWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.CreateCaseFromChat, workflow.RegisterOptions{Name: workflows.CreateCaseFromChatName})
	r.RegisterWorkflowWithOptions(workflows.NoCodeAction, workflow.RegisterOptions{Name: workflows.NoCodeActionName})
}
