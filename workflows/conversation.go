package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// profileFetch prefixes a contact ID in the fetch queue.
const profileFetch = "profile:"

// ingest handles one inbound message or conversation event; the first
// message opens the chat.
func (c *chat) ingest(ctx workflow.Context, m domain.InboundMessage) error {
	switch m.Event {
	case domain.EventHandoverToUs:
		return c.handoverToUs(ctx)
	case domain.EventHandoverToBot:
		if c.s.Status != domain.ChatWaiting && c.s.Status != domain.ChatOffered && c.s.Status != domain.ChatInProgress {
			return nil
		}
		err := c.closeChat(ctx, domain.CloseByBot)
		if err != nil && !cancelled(err) {
			c.logger.Error("close on handover to the bot refused by the store", "Error", err)
			return nil
		}
		return err
	}
	opening := c.s.Status == ""
	if c.s.ChatID == "" {
		c.s.ChatID = derivedID(ctx, "chat")
		c.setLogger(ctx)
	}
	// Signals of earlier releases do not carry the conversation: the workflow knows it.
	m.ConversationID = c.in.ConversationID
	c.s.GateSeq = max(c.s.GateSeq, m.GateSeq)
	req := activities.IngestRequest{ChatID: c.s.ChatID, OpenChat: opening, WorkflowID: c.workflow, ChannelID: c.in.ChannelID, Message: m}
	if opening && c.claim {
		req.Claim, req.OpenGate = true, true
	}
	var res activities.IngestResult
	if err := db(ctx, c.conv.Ingest, req, &res); err != nil {
		if cancelled(err) {
			return err
		}
		// Database outages are retried until it answers; what fails here was
		// refused for good (its channel deleted) and must not stop the chat.
		c.logger.Error("inbound message refused by the store", "ExternalID", m.ExternalID, "Error", err)
		return nil
	}
	if res.Duplicate || (opening && res.ChatID == "") {
		return nil // a duplicate, or an edit of a message of an earlier chat
	}
	c.s.Handled++
	c.s.Fetches = append(c.s.Fetches, res.Attachments...)
	if opening {
		c.s.ContactID, c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = res.ContactID, res.QueueID, res.RoutingRule, res.CompletionTimeout
		c.s.ReleasesThread = res.ReleasesThread
		c.s.Status = domain.ChatWaiting
		if m.Standby {
			c.s.Status = domain.ChatBot
		}
		if res.NewContact {
			c.s.Fetches = append(c.s.Fetches, profileFetch+res.ContactID)
		}
		if req.OpenGate {
			c.gateAsked, c.s.Direct = m.GateSeq, res.GateOpened
		}
		if res.Status == domain.ChatOffered && res.AgentID != "" {
			// Offered by the opening itself: the agent's time runs from then.
			c.onOffer(ctx, Offer{ChatID: c.s.ChatID, AgentID: res.AgentID, AcceptTimeout: res.AcceptTimeout, OfferedAt: res.OfferedAt})
		} else {
			c.kickIfRouted(ctx)
		}
	}
	if res.Stored && c.s.Status == domain.ChatInProgress {
		c.s.CompletionDeadline = time.Time{} // the customer answered: disarm
	}
	return nil
}

// handoverToUs moves a bot-owned chat into routing.
func (c *chat) handoverToUs(ctx workflow.Context) error {
	if c.s.Status != domain.ChatBot {
		return nil
	}
	var q activities.QueueInfo
	if err := db(ctx, c.conv.StartRouting, activities.CloseRequest{ChatID: c.s.ChatID}, &q); err != nil {
		if cancelled(err) {
			return err
		}
		c.logger.Error("handover to omnichat refused by the store", "Error", err)
		return nil
	}
	c.s.Status = domain.ChatWaiting
	c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = q.QueueID, q.RoutingRule, q.CompletionTimeout
	c.kickIfRouted(ctx)
	return nil
}

// fetchLoop downloads attachments and profiles in the background, in order.
// The activities give up on a provider themselves, recording why; what comes
// back as an error here was refused for good.
func (c *chat) fetchLoop(ctx workflow.Context) {
	opts := workflow.WithActivityOptions(ctx, fetchActivity)
	for {
		if err := workflow.Await(ctx, func() bool { return len(c.s.Fetches) > 0 }); err != nil {
			return
		}
		item := c.s.Fetches[0]
		var err error
		if contactID, ok := strings.CutPrefix(item, profileFetch); ok {
			err = workflow.ExecuteActivity(opts, c.media.FetchProfile, activities.ProfileRequest{ContactID: contactID}).Get(ctx, nil)
		} else {
			err = workflow.ExecuteActivity(opts, c.media.FetchAttachment, activities.FetchRequest{AttachmentID: item}).Get(ctx, nil)
		}
		if err != nil {
			if cancelled(err) {
				return
			}
			c.logger.Warn("download refused", "Item", item, "Error", err)
		}
		c.s.Fetches = c.s.Fetches[1:]
	}
}

// onNotice handles what the API tells about a message it stored.
func (c *chat) onNotice(ctx workflow.Context, n Notice) error {
	if n.ChatID != c.s.ChatID || c.s.Status == domain.ChatClosed {
		return nil // a notice of an earlier chat of the conversation
	}
	switch n.Kind {
	case NoticeAttachment:
		c.s.Fetches = append(c.s.Fetches, n.Ref)
	case NoticeAnswered:
		if c.s.Status != domain.ChatInProgress || c.s.CompletionDeadline.IsZero() {
			return nil
		}
		// The notice may be older than the agent's latest reply: Postgres says
		// whether the customer has the last word now.
		var waiting bool
		if err := db(ctx, c.conv.CustomerWaiting, activities.ChatRef{ChatID: c.s.ChatID}, &waiting); err != nil {
			if cancelled(err) {
				return err
			}
			c.logger.Error("customer's answer not checked", "Error", err)
			return nil
		}
		if waiting {
			c.s.CompletionDeadline = time.Time{} // the customer answered: disarm
		}
	}
	return nil
}

// openGate lets the API store the chat's messages once the chat has handled
// every message signalled to its conversation. Postgres refuses while a
// signal is on its way; the chat asks again when the next message arrives.
func (c *chat) openGate(ctx workflow.Context) error {
	c.gateAsked = c.s.GateSeq
	var opened bool
	if err := db(ctx, c.conv.OpenGate, activities.OpenGateRequest{ChatID: c.s.ChatID, Received: c.s.GateSeq}, &opened); err != nil {
		if cancelled(err) {
			return err
		}
		c.logger.Error("gate not opened", "Error", err)
		return nil
	}
	c.s.Direct = opened
	return nil
}
