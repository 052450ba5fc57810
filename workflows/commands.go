package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// Agents' commands are updates: a validator refuses what the chat's state
// does not allow before anything is written; the handler re-checks under the
// chat's mutex and records the change through an activity.

func (c *chat) validateAccept(req AcceptRequest) error {
	switch {
	case req.AgentID == "":
		return invalid("agent is required")
	case c.s.Status == domain.ChatInProgress && c.s.AgentID == req.AgentID:
		return nil
	case c.acting != "" && c.acting != req.AgentID:
		return conflict("chat is being accepted by another agent")
	case c.s.Status == domain.ChatOffered && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == domain.ChatOffered:
		return conflict("chat is offered to another agent")
	case c.s.Status == domain.ChatWaiting:
		// Postgres decides: the offer may be recorded before its signal arrives.
		return nil
	case c.s.Status == "" && c.s.ChatID != "":
		// The chat row is committed and visible while its first message is being
		// handled; the handler waits for that under the lock and decides then.
		return nil
	case c.s.Status == domain.ChatInProgress:
		return conflict("chat was already accepted by another agent")
	}
	return conflict("chat is " + statusText(c.s.Status))
}

func statusText(s string) string {
	if s == "" {
		return "not open"
	}
	return s
}

func (c *chat) result() ChatResult {
	return ChatResult{ChatID: c.s.ChatID, Status: c.s.Status, AgentID: c.s.AgentID, QueueID: c.s.QueueID}
}

func (c *chat) accept(ctx workflow.Context, req AcceptRequest) (ChatResult, error) {
	if c.acting == "" {
		c.acting = req.AgentID
		defer func() {
			if c.acting == req.AgentID {
				c.acting = ""
			}
		}()
	}
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateAcceptState(req); err != nil {
			return err
		}
		if c.s.Status == domain.ChatInProgress {
			out = c.result()
			return nil
		}
		var res activities.AcceptResult
		if err := command(ctx, c.conv.Accept, activities.ChatAgent{ChatID: c.s.ChatID, AgentID: req.AgentID}, &res); err != nil {
			return commandError(err)
		}
		if !res.Accepted {
			// Postgres knows better (an accept whose answer was lost): adopt it.
			if res.Status == domain.ChatInProgress {
				c.s.Status, c.s.AgentID, c.s.OfferDeadline = domain.ChatInProgress, res.AgentID, time.Time{}
				c.changed()
			}
			return conflict("chat was already accepted by another agent")
		}
		c.s.Status, c.s.AgentID, c.s.OfferDeadline, c.s.CompletionDeadline = domain.ChatInProgress, req.AgentID, time.Time{}, time.Time{}
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}

// validateAcceptState re-checks, under the mutex, the parts of validateAccept
// that do not depend on who is accepting right now.
func (c *chat) validateAcceptState(req AcceptRequest) error {
	switch {
	case c.s.Status == domain.ChatInProgress && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == domain.ChatOffered && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == domain.ChatWaiting:
		return nil
	case c.s.Status == domain.ChatInProgress:
		return conflict("chat was already accepted by another agent")
	}
	return conflict("chat is " + statusText(c.s.Status) + " and cannot be accepted by this agent")
}

// assigned allows a command only to the agent of an in-progress chat.
func (c *chat) assigned(agentID string) error {
	switch {
	case agentID == "":
		return invalid("agent is required")
	case c.s.Status == domain.ChatClosed:
		return conflict("chat is closed")
	case c.s.Status != domain.ChatInProgress:
		return conflict("chat is " + statusText(c.s.Status) + "; accept it first")
	case c.s.AgentID != agentID:
		return forbidden("only the chat's agent can do this")
	}
	return nil
}

func (c *chat) validateClose(req CloseRequest) error { return c.assigned(req.AgentID) }

func (c *chat) close(ctx workflow.Context, req CloseRequest) (ChatResult, error) {
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateClose(req); err != nil {
			return err
		}
		if err := c.closeChat(ctx, domain.CloseByAgent); err != nil {
			return commandError(err)
		}
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}

// closeOnTimeout closes the chat when its completion timer fired, unless
// Postgres says the customer wrote after the agent's last reply: then the
// chat stays open with the message and the timer is disarmed.
func (c *chat) closeOnTimeout(ctx workflow.Context) error {
	var closed bool
	if err := command(ctx, c.conv.CloseOnTimeout, activities.ChatRef{ChatID: c.s.ChatID}, &closed); err != nil {
		if cancelled(err) {
			return err
		}
		c.logger.Error("close on completion timeout refused by the store", "Error", err)
		c.s.CompletionDeadline = time.Time{}
		return nil
	}
	if !closed {
		c.s.CompletionDeadline = time.Time{}
		return nil
	}
	return c.closed(ctx, domain.CloseTimeout)
}

// closeChat records the close, hands the conversation back to its bot when
// the channel does so, and ends the chat.
func (c *chat) closeChat(ctx workflow.Context, reason string) error {
	if err := command(ctx, c.conv.CloseChat, activities.CloseRequest{ChatID: c.s.ChatID, Reason: reason}, nil); err != nil {
		return err
	}
	return c.closed(ctx, reason)
}

// closed follows a recorded close: the conversation goes back to its bot
// when the channel does so, and the chat ends.
func (c *chat) closed(ctx workflow.Context, reason string) error {
	if c.s.ReleasesThread && reason != domain.CloseByBot {
		opts := workflow.WithActivityOptions(ctx, fetchActivity)
		if err := workflow.ExecuteActivity(opts, c.media.ReleaseThread, activities.CloseRequest{ChatID: c.s.ChatID}).Get(ctx, nil); err != nil {
			c.logger.Warn("conversation not handed back to the bot", "Error", err)
		}
	}
	hadAgent := c.s.AgentID != ""
	c.s.Status, c.s.CloseReason, c.s.CompletionDeadline, c.s.OfferDeadline = domain.ChatClosed, reason, time.Time{}, time.Time{}
	if hadAgent {
		c.kick(ctx) // capacity freed
	}
	return nil
}

func (c *chat) validateTransfer(req TransferRequest) error {
	if err := c.assigned(req.AgentID); err != nil {
		return err
	}
	switch {
	case (req.ToQueueID == "") == (req.ToAgentID == ""):
		return invalid("give exactly one of queue and agent")
	case req.ToAgentID == req.AgentID:
		return invalid("the chat is already yours")
	case req.ToQueueID == c.s.QueueID:
		return invalid("the chat is already in this queue")
	}
	return nil
}

func (c *chat) transfer(ctx workflow.Context, req TransferRequest) (ChatResult, error) {
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateTransfer(req); err != nil {
			return err
		}
		if req.ToAgentID != "" {
			if err := command(ctx, c.conv.TransferToAgent, activities.ChatAgent{ChatID: c.s.ChatID, AgentID: req.ToAgentID}, nil); err != nil {
				return commandError(err)
			}
			c.s.AgentID = req.ToAgentID
		} else {
			var q activities.QueueInfo
			if err := command(ctx, c.conv.TransferToQueue, activities.TransferToQueueRequest{ChatID: c.s.ChatID, QueueID: req.ToQueueID}, &q); err != nil {
				return commandError(err)
			}
			c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = q.QueueID, q.RoutingRule, q.CompletionTimeout
			c.s.Status, c.s.AgentID = domain.ChatWaiting, ""
		}
		c.s.CompletionDeadline = time.Time{}
		c.kick(ctx) // the previous agent has capacity again; a queue transfer needs routing
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}
