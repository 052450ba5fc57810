// Package chatcmd is the Temporal client side of omnichat's chats: it
// implements service.ChatRuntime (inbound messages by signal-with-start,
// agents' commands by updates, offers by signals) and keeps the routing
// workflow running. Workflow refusals come back as domain errors; a Temporal
// that does not answer as domain.ErrUnavailable.
package chatcmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/workflows"
)

// Client sends commands to chat workflows.
type Client struct {
	tc        client.Client
	taskQueue string
	// ActionStartTimeout is how long an action's workflow has to be picked
	// up by a worker before its run is failed (0: a minute).
	ActionStartTimeout time.Duration
}

var (
	_ service.ChatRuntime  = (*Client)(nil)
	_ service.ChatNotifier = (*Client)(nil)
)

// New builds a Client for the workflows of a task queue.
func New(tc client.Client, taskQueue string) *Client {
	return &Client{tc: tc, taskQueue: taskQueue}
}

// DeliverInbound hands a customer's message to its conversation's chat
// workflow, starting one if none is open. When it returns nil the message is
// durable in Temporal's history.
func (c *Client) DeliverInbound(ctx context.Context, channelID, conversationID string, m domain.InboundMessage) error {
	id := workflows.ChatWorkflowID(channelID, conversationID)
	_, err := c.tc.SignalWithStartWorkflow(ctx, id, workflows.SignalInbound, m, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.taskQueue,
	}, workflows.ChatWorkflowName, workflows.ChatInput{ChannelID: channelID, ConversationID: conversationID})
	if err != nil {
		return fmt.Errorf("signal-with-start %s: %w: %w", id, domain.ErrUnavailable, err)
	}
	return nil
}

// Notify signals a notice to the chat's workflow. A workflow that is gone
// closed its chat, and a closing chat downloads its files itself: nothing is
// left to tell.
func (c *Client) Notify(ctx context.Context, n service.ChatNotice) error {
	err := c.tc.SignalWorkflow(ctx, n.WorkflowID, "", workflows.SignalNotice, workflows.Notice{ChatID: n.ChatID.String(), Kind: n.Kind, Ref: n.Ref})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// NotifyOffer tells a chat workflow it was offered to an agent.
func (c *Client) NotifyOffer(ctx context.Context, o service.Offer, acceptTimeout time.Duration) error {
	err := c.tc.SignalWorkflow(ctx, o.WorkflowID, "", workflows.SignalOffer,
		workflows.Offer{ChatID: o.ChatID.String(), AgentID: o.AgentID.String(), AcceptTimeout: acceptTimeout, OfferedAt: o.OfferedAt})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil // the chat's workflow is gone; nothing is left to offer
	}
	return err
}

// EnsureRouting starts the routing workflow of the task queue unless it runs.
func (c *Client) EnsureRouting(ctx context.Context) error {
	id := workflows.RoutingWorkflowID(c.taskQueue)
	_, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.RoutingWorkflowName)
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// Accept asks the chat to accept it for the agent.
func (c *Client) Accept(ctx context.Context, workflowID, agentID string) error {
	return c.update(ctx, workflowID, workflows.UpdateAccept, "", workflows.AcceptRequest{AgentID: agentID}, &workflows.ChatResult{})
}

// Send asks the chat to store and send an agent's message. The idempotency key
// becomes the update ID, so a retried request sends once.
func (c *Client) Send(ctx context.Context, workflowID string, cmd service.SendCommand) (string, error) {
	var out workflows.SendResult
	updateID := ""
	if cmd.IdempotencyKey != "" {
		updateID = "send/" + cmd.AgentID + "/" + cmd.IdempotencyKey
	}
	err := c.update(ctx, workflowID, workflows.UpdateSend, updateID, workflows.SendRequest{AgentID: cmd.AgentID, Text: cmd.Text,
		IdempotencyKey: cmd.IdempotencyKey, AttachmentID: cmd.AttachmentID}, &out)
	return out.MessageID, err
}

// Close asks the chat to close.
func (c *Client) Close(ctx context.Context, workflowID, agentID string) error {
	return c.update(ctx, workflowID, workflows.UpdateClose, "", workflows.CloseRequest{AgentID: agentID}, &workflows.ChatResult{})
}

// Transfer asks the chat to move to a queue or an agent.
func (c *Client) Transfer(ctx context.Context, workflowID string, cmd service.TransferCommand) error {
	return c.update(ctx, workflowID, workflows.UpdateTransfer, "",
		workflows.TransferRequest{AgentID: cmd.AgentID, ToQueueID: cmd.ToQueueID, ToAgentID: cmd.ToAgentID}, &workflows.ChatResult{})
}

// State queries a chat workflow's state.
func (c *Client) State(ctx context.Context, workflowID string) (workflows.ChatState, error) {
	var s workflows.ChatState
	v, err := c.tc.QueryWorkflow(ctx, workflowID, "", workflows.QueryState)
	if err != nil {
		return s, err
	}
	return s, v.Get(&s)
}

// Health checks the Temporal frontend answers.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.tc.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

func (c *Client) update(ctx context.Context, workflowID, name, updateID string, arg, out any) error {
	if updateID == "" {
		updateID = name + "/" + uuid.NewString()
	}
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, time.Second) {
		h, err := c.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID:   workflowID,
			UpdateID:     updateID,
			UpdateName:   name,
			Args:         []any{arg},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, out)
		}
		var exhausted *serviceerror.ResourceExhausted
		if errors.As(err, &exhausted) {
			// Too many updates in flight on this chat: wait and ask again.
			select {
			case <-ctx.Done():
				return fmt.Errorf("chat is busy: %w: %w", domain.ErrUnavailable, ctx.Err())
			case <-time.After(delay):
				continue
			}
		}
		return mapError(err)
	}
}

// mapError turns a workflow's answer into a domain error.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if derr := domain.FromKind(app.Type(), app.Message()); derr != nil {
			return derr
		}
	}
	var nf *serviceerror.NotFound
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("chat is closed: %w", domain.ErrConflict)
	case errors.As(err, &unavailable), errors.As(err, &deadline), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the chat did not answer in time; it may still complete, retry to find out: %w: %w", domain.ErrUnavailable, err)
	}
	return err
}
