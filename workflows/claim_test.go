package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// A chat whose opening claimed an agent needs no offer signal and no gate
// step: its accept timer runs from when the opening recorded the offer (here
// a minute before the workflow learnt of it), and expires on time.
func TestOpeningThatClaimedAnAgentArmsTheAcceptTimer(t *testing.T) {
	var h *harness
	var asked activities.IngestRequest
	var offeredAt time.Time
	h = newHarnessIngest(t, func(_ context.Context, r activities.IngestRequest) (activities.IngestResult, error) {
		asked = r
		offeredAt = h.env.Now().Add(-time.Minute)
		return activities.IngestResult{Stored: true, ChatID: r.ChatID, QueueID: "q1", RoutingRule: domain.RuleAvailableAgent,
			Status: domain.ChatOffered, AgentID: "alice", OfferedAt: offeredAt, AcceptTimeout: 5 * time.Minute,
			GateOpened: true}, nil
	})
	var expired []string
	var expiredOffer time.Time
	h.env.OnActivity(conv.ExpireOffer, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ExpireRequest) (bool, error) {
		expired = append(expired, r.AgentID)
		expiredOffer = r.OfferedAt
		return true, nil
	})
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
	h.at(time.Second, func() {
		if !asked.OpenChat || !asked.Claim || !asked.OpenGate {
			t.Errorf("the opening was not asked to claim an agent and open the gate: %+v", asked)
		}
		s := h.state()
		if s.Status != domain.ChatOffered || s.AgentID != "alice" || !s.Direct {
			t.Errorf("after the opening: want offered to alice with the gate open, got %s %q direct=%v", s.Status, s.AgentID, s.Direct)
		}
	})
	h.at(4*time.Minute-2*time.Second, func() {
		if len(expired) != 0 {
			t.Errorf("offer expired before its deadline: %v", expired)
		}
	})
	h.at(4*time.Minute+2*time.Second, func() {
		if len(expired) != 1 || expired[0] != "alice" {
			t.Errorf("want alice's offer expired 5 minutes after it was recorded, got %v", expired)
		}
		if s := h.state(); s.Status != domain.ChatWaiting || s.AgentID != "" {
			t.Errorf("after the expiry: want waiting, got %s %q", s.Status, s.AgentID)
		}
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "bob", AcceptTimeout: 5 * time.Minute})
	})
	h.at(5*time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "bob"}) })
	h.at(6*time.Minute, func() { h.update(UpdateClose, CloseRequest{AgentID: "bob"}) })
	start(h, ChatInput{})
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", h.env.IsWorkflowCompleted(), h.env.GetWorkflowError())
	}
	if len(expired) != 1 {
		t.Fatalf("ExpireOffer calls: %v, want [alice]", expired)
	}
	// The expiry names the offer it takes back, so that a repeat of it can
	// never take back a later offer to alice.
	if !expiredOffer.Equal(offeredAt) {
		t.Fatalf("expiry named the offer of %s, want alice's offer of %s", expiredOffer, offeredAt)
	}
	// The opening's own transaction did what the gate step did.
	h.env.AssertActivityNumberOfCalls(t, "OpenGate", 0)
	h.env.AssertActivityNumberOfCalls(t, "KickDispatch", 0)
}

// A stale offer re-sent by routing (its first signal arrived but was
// reported failed) and the chat's later offer to the same agent arrive
// together after the first offer expired: the later offer is the chat's
// offer, and its accept timer runs; the stale one is never expired twice.
func TestLaterOfferReplacesAStaleOneTakenUpFirst(t *testing.T) {
	h := newHarness(t, domain.RuleAvailableAgent, 0)
	const timeout = 5 * time.Minute
	// The store, as the expiry's UPDATE sees it: the chat's offer and its time.
	var dbAgent string
	var dbAt time.Time
	var expired []activities.ExpireRequest
	h.env.OnActivity(conv.ExpireOffer, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ExpireRequest) (bool, error) {
		expired = append(expired, r)
		if r.AgentID != dbAgent || (!r.OfferedAt.IsZero() && dbAt.After(r.OfferedAt.Add(time.Millisecond))) {
			return false, nil
		}
		dbAgent = ""
		return true, nil
	})
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
	var t0, t2 time.Time
	h.at(time.Second, func() {
		t0, dbAgent, dbAt = h.env.Now(), "alice", h.env.Now()
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "alice", AcceptTimeout: timeout, OfferedAt: t0})
	})
	h.at(timeout+10*time.Second, func() {
		if len(expired) != 1 || dbAgent != "" {
			t.Errorf("alice's first offer did not expire: %+v", expired)
		}
		// Alice is back; routing offers her the chat again and re-sends the first offer.
		t2, dbAgent, dbAt = h.env.Now(), "alice", h.env.Now()
		id := h.state().ChatID
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: id, AgentID: "alice", AcceptTimeout: timeout, OfferedAt: t0})
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: id, AgentID: "alice", AcceptTimeout: timeout, OfferedAt: t2})
	})
	h.at(2*timeout, func() {
		s := h.state()
		if s.Status != domain.ChatOffered || s.AgentID != "alice" || !s.OfferedAt.Equal(t2) || !s.OfferDeadline.Equal(t2.Add(timeout)) {
			t.Errorf("want the later offer held, due at %s, got %s %q offered %s due %s", t2.Add(timeout), s.Status, s.AgentID, s.OfferedAt, s.OfferDeadline)
		}
	})
	h.at(2*timeout+20*time.Second, func() {
		if dbAgent != "" {
			t.Errorf("the later offer was never expired: expiries %+v", expired)
		}
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "bob", AcceptTimeout: timeout, OfferedAt: h.env.Now()})
	})
	h.at(2*timeout+30*time.Second, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "bob"}) })
	h.at(2*timeout+40*time.Second, func() { h.update(UpdateClose, CloseRequest{AgentID: "bob"}) })
	start(h, ChatInput{})
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", h.env.IsWorkflowCompleted(), h.env.GetWorkflowError())
	}
	last := expired[len(expired)-1]
	if !last.OfferedAt.Equal(t2) {
		t.Fatalf("last expiry named %s, want the later offer %s", last.OfferedAt, t2)
	}
}
