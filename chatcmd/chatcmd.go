// Package chatcmd talks to running chat workflows for the API and the
// activities: it delivers inbound messages (signal-with-start), agents'
// commands (updates) and routing offers, and maps workflow rejections to the
// domain errors of package models.
package chatcmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/workflows"
)

// Client sends commands to chat workflows.
type Client struct {
	tc        client.Client
	taskQueue string
}

// New builds a Client for the workflows of a task queue.
func New(tc client.Client, taskQueue string) *Client {
	return &Client{tc: tc, taskQueue: taskQueue}
}

// DeliverInbound hands a customer's message to its conversation's chat
// workflow, starting one if none is open. When it returns nil the message is
// durable in Temporal's history.
func (c *Client) DeliverInbound(ctx context.Context, channelID, conversationID string, m workflows.InboundMessage) error {
	id := workflows.ChatWorkflowID(channelID, conversationID)
	_, err := c.tc.SignalWithStartWorkflow(ctx, id, workflows.SignalInbound, m, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.taskQueue,
	}, workflows.ChatWorkflowName, workflows.ChatInput{ChannelID: channelID, ConversationID: conversationID})
	if err != nil {
		return fmt.Errorf("signal-with-start %s: %w", id, err)
	}
	return nil
}

// NotifyOffer tells a chat workflow it was offered to an agent.
func (c *Client) NotifyOffer(ctx context.Context, o models.Offer, acceptTimeout time.Duration) error {
	err := c.tc.SignalWorkflow(ctx, o.WorkflowID, "", workflows.SignalOffer,
		workflows.Offer{ChatID: o.ChatID.String(), AgentID: o.AgentID.String(), AcceptTimeout: acceptTimeout})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil // the chat's workflow is gone; nothing is left to offer
	}
	return err
}

// Kick asks the dispatcher to offer waiting chats.
func (c *Client) Kick(ctx context.Context) error {
	id := workflows.DispatchWorkflowID(c.taskQueue)
	_, err := c.tc.SignalWithStartWorkflow(ctx, id, workflows.SignalKick, nil, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.taskQueue,
	}, workflows.DispatchWorkflowName)
	if err != nil {
		return fmt.Errorf("kick dispatcher: %w", err)
	}
	return nil
}

// Accept asks the chat to accept it for the agent.
func (c *Client) Accept(ctx context.Context, workflowID string, req workflows.AcceptRequest) (workflows.ChatResult, error) {
	var out workflows.ChatResult
	return out, c.update(ctx, workflowID, workflows.UpdateAccept, "", req, &out)
}

// Send asks the chat to store and send an agent's message. The idempotency key
// becomes the update ID, so a retried request sends once.
func (c *Client) Send(ctx context.Context, workflowID string, req workflows.SendRequest) (workflows.SendResult, error) {
	var out workflows.SendResult
	updateID := ""
	if req.IdempotencyKey != "" {
		updateID = "send/" + req.AgentID + "/" + req.IdempotencyKey
	}
	return out, c.update(ctx, workflowID, workflows.UpdateSend, updateID, req, &out)
}

// Close asks the chat to close.
func (c *Client) Close(ctx context.Context, workflowID string, req workflows.CloseRequest) (workflows.ChatResult, error) {
	var out workflows.ChatResult
	return out, c.update(ctx, workflowID, workflows.UpdateClose, "", req, &out)
}

// Transfer asks the chat to move to a queue or an agent.
func (c *Client) Transfer(ctx context.Context, workflowID string, req workflows.TransferRequest) (workflows.ChatResult, error) {
	var out workflows.ChatResult
	return out, c.update(ctx, workflowID, workflows.UpdateTransfer, "", req, &out)
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
				return fmt.Errorf("chat is busy: %w", ctx.Err())
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
		switch app.Type() {
		case workflows.ErrTypeConflict:
			return fmt.Errorf("%s: %w", app.Message(), models.ErrConflict)
		case workflows.ErrTypeForbidden:
			return fmt.Errorf("%s: %w", app.Message(), models.ErrForbidden)
		case workflows.ErrTypeNotFound:
			return fmt.Errorf("%s: %w", app.Message(), models.ErrNotFound)
		case workflows.ErrTypeInvalid:
			return fmt.Errorf("%s: %w", app.Message(), models.ErrInvalid)
		}
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("chat is closed: %w", models.ErrConflict)
	}
	return err
}
