package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// kickIfRouted asks the dispatcher of earlier releases to offer the chat when
// its queue routes to one agent. Newer chats need not: the activity that made
// the chat wait woke routing in its own transaction.
func (c *chat) kickIfRouted(ctx workflow.Context) {
	if c.s.Status == domain.ChatWaiting && c.s.RoutingRule == domain.RuleAvailableAgent {
		c.kick(ctx)
	}
}

// kick is the wake-up of chats started before changeRoutingWakesInTransactions.
func (c *chat) kick(ctx workflow.Context) {
	if !c.legacyKicks {
		return
	}
	if err := db(ctx, c.dispatch.KickDispatch, nil, nil); err != nil {
		c.logger.Error("dispatch kick failed", "Error", err)
	}
}

func (c *chat) onOffer(ctx workflow.Context, o Offer) {
	if o.ChatID != c.s.ChatID {
		return
	}
	if c.s.Status == domain.ChatOffered && c.supersedes(o) &&
		workflow.GetVersion(ctx, changeLaterOfferWins, workflow.DefaultVersion, 1) == 1 {
		// A stale offer (re-sent by routing after a reported failure) was
		// taken up before this later one: routing records one offer at a
		// time, so the later is the chat's offer now, and its timer must run.
		c.s.Status = domain.ChatWaiting
	}
	if c.s.Status != domain.ChatWaiting {
		return // a repeated or stale offer
	}
	// The agent's time runs from when routing recorded the offer, however
	// late its signal arrives.
	from := o.OfferedAt
	if from.IsZero() {
		from = workflow.Now(ctx)
	}
	c.s.Status = domain.ChatOffered
	c.s.AgentID = o.AgentID
	c.s.OfferDeadline = from.Add(o.AcceptTimeout)
	c.s.OfferedAt = o.OfferedAt
}

// supersedes reports whether o was recorded by routing after the offer the
// chat holds (a re-sent offer carries the stored time, in microseconds).
func (c *chat) supersedes(o Offer) bool {
	return !o.OfferedAt.IsZero() && !c.s.OfferedAt.IsZero() && o.OfferedAt.After(c.s.OfferedAt.Add(domain.OfferTimeSlack))
}

// expireOffer runs when the offered agent did not accept in time.
func (c *chat) expireOffer(ctx workflow.Context) error {
	if c.s.Status != domain.ChatOffered || workflow.Now(ctx).Before(c.s.OfferDeadline) {
		return nil
	}
	// The offer's time keeps a repeated expiry (its workflow task lost after
	// the first committed) from taking back a later offer to the same agent.
	err := db(ctx, c.conv.ExpireOffer, activities.ExpireRequest{ChatAgent: activities.ChatAgent{ChatID: c.s.ChatID, AgentID: c.s.AgentID}, OfferedAt: c.s.OfferedAt}, nil)
	if err != nil {
		if cancelled(err) {
			return err
		}
		// Retried until the database answered, so this is a refusal: the chat
		// waits again rather than firing the same deadline forever.
		c.logger.Error("offer expiry refused by the store", "AgentID", c.s.AgentID, "Error", err)
	}
	c.s.Status, c.s.AgentID, c.s.OfferDeadline = domain.ChatWaiting, "", time.Time{}
	c.kick(ctx)
	return nil
}
