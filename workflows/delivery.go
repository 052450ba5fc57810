package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// maxTextLen bounds an agent's message.
const maxTextLen = 10000

// deliverLoop hands agent messages to the provider one at a time, in order,
// keeping the pause the provider asks between two messages.
func (c *chat) deliverLoop(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(c.s.Outbox) > 0 }); err != nil {
			return
		}
		if wait := c.s.LastSentAt.Add(c.s.Pause).Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return
			}
		}
		id := c.s.Outbox[0]
		var res activities.DeliverResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, deliverActivity), c.delivery.Deliver, activities.DeliverRequest{MessageID: id}).Get(ctx, &res)
		var app *temporal.ApplicationError
		if err != nil && !(errors.As(err, &app) && app.Type() == domain.KindPermanentSend) {
			if cancelled(err) {
				return
			}
			// Deliver records the provider's refusals itself; an attempt
			// scheduled by an earlier release could run out of retries
			// instead: record it so the agent sees the message failed.
			reason := "not delivered after retries: " + err.Error()
			if err := db(ctx, c.conv.MarkFailed, activities.MarkFailedRequest{MessageID: id, Reason: reason}, nil); err != nil {
				c.logger.Error("failed delivery not recorded", "MessageID", id, "Error", err)
			}
		}
		c.s.LastSentAt, c.s.Pause = workflow.Now(ctx), res.Pause
		c.s.Outbox = c.s.Outbox[1:]
	}
}

func (c *chat) validateSend(req SendRequest) error {
	if err := c.assigned(req.AgentID); err != nil {
		return err
	}
	if (req.Text == "" && req.AttachmentID == "") || len(req.Text) > maxTextLen {
		return invalid("text must be 1 to 10000 bytes, or empty with an attachment")
	}
	return nil
}

func (c *chat) send(ctx workflow.Context, req SendRequest) (SendResult, error) {
	var out SendResult
	err := c.locked(ctx, func() error {
		if err := c.validateSend(req); err != nil {
			return err
		}
		var rec activities.OutboundRecord
		err := command(ctx, c.conv.RecordOutbound, activities.RecordOutboundRequest{MessageID: derivedID(ctx, "message", workflow.GetCurrentUpdateInfo(ctx).ID),
			ChatID: c.s.ChatID, AgentID: req.AgentID, Text: req.Text, IdempotencyKey: req.IdempotencyKey, AttachmentID: req.AttachmentID}, &rec)
		if err != nil {
			return commandError(err)
		}
		out = SendResult{MessageID: rec.MessageID, Status: rec.Status}
		if !rec.New {
			return nil
		}
		c.s.Outbox = append(c.s.Outbox, rec.MessageID)
		if c.s.CompletionTimeout > 0 {
			c.s.CompletionDeadline = workflow.Now(ctx).Add(c.s.CompletionTimeout)
		}
		c.changed()
		return nil
	})
	return out, err
}
