package chatcmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/workflows"
)

var (
	_ service.ActionRuntime      = (*Client)(nil)
	_ activities.ActionWorkflows = (*Client)(nil)
)

// defaultActionStartTimeout is how long an action's workflow has to start by default.
const defaultActionStartTimeout = time.Minute

// StartActionRun starts the run's ActionRunWorkflow on omnichat's task
// queue; a run whose workflow exists already (a retried request) is left
// to it.
func (c *Client) StartActionRun(ctx context.Context, run service.ActionRunStart) error {
	id := workflows.ActionRunWorkflowID(run.RunID.String())
	taskQueue := run.TaskQueue
	if taskQueue == "" {
		taskQueue = c.taskQueue
	}
	timeout := c.ActionStartTimeout
	if timeout <= 0 {
		timeout = defaultActionStartTimeout
	}
	_, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.ActionRunWorkflowName, workflows.ActionRunInput{
		RunID: run.RunID.String(), WorkflowType: run.WorkflowType, TaskQueue: taskQueue, StartTimeout: timeout,
		Input: workflows.ActionInput{ChatID: run.ChatID.String(), ContactID: run.ContactID.String(), ActionID: run.ActionID.String(),
			AgentID: run.AgentID.String(), QueueID: run.QueueID.String(), ChannelID: run.ChannelID.String()},
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start %s: %w: %w", id, domain.ErrUnavailable, err)
	}
	return nil
}

// Started reports whether a worker completed the first workflow task of an
// execution, or the execution has ended (however).
func (c *Client) Started(ctx context.Context, workflowID, runID string) (bool, error) {
	d, err := c.tc.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return false, err
	}
	if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return true, nil
	}
	it := c.tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return false, err
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return true, nil
		}
	}
	return false, nil
}

// Terminate ends an execution; one that has ended already is left alone.
func (c *Client) Terminate(ctx context.Context, workflowID, runID, reason string) error {
	err := c.tc.TerminateWorkflow(ctx, workflowID, runID, reason)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
