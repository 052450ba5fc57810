package e2e

import (
	"context"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
	"github.com/omnichat/omnichat/workflows"
)

func (e *env) timersFired(workflowID string) int {
	return e.historyEvents(workflowID, func(ev *historypb.HistoryEvent) bool { return ev.GetEventType().String() == "TimerFired" })
}

// historyEvents counts the events of a workflow's latest run that match.
func (e *env) historyEvents(workflowID string, match func(*historypb.HistoryEvent) bool) int {
	it := e.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		if match(ev) {
			n++
		}
	}
	return n
}

// Timers that fall due while no worker runs fire once when one is back, and a
// message the webhook accepted meanwhile is stored.
func TestWorkerRestartKeepsTimersAndMessages(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAvailableAgent, 0.05, alice)
	ch := e.channel(q)
	e.setting(models.SettingAcceptTimeout, "0.05")
	e.activate(alice)

	e.must(200, e.inbound(ch, "a", "a-1", "first"), "inbound a")
	chatA := e.waitOffer(alice)
	e.must(200, e.Do("POST", "/api/v1/chats/"+chatA.ID.String()+"/accept", alice.Token, nil), "accept a")
	e.must(201, e.Do("POST", "/api/v1/chats/"+chatA.ID.String()+"/messages", alice.Token, map[string]any{"text": "on it"}), "reply a")
	e.must(200, e.inbound(ch, "b", "b-1", "second"), "inbound b")
	chatB := e.waitOffer(alice) // alice now has a in progress and b offered: both timers armed

	e.StopWorker()
	e.must(200, e.inbound(ch, "c", "c-1", "written while the worker is down"), "inbound c while down")
	// Let both timers (3 s) fall due while nothing runs.
	down := time.Now()
	testenv.Eventually(t, 10*time.Second, "timers are due", func() bool { return time.Since(down) > 4*time.Second })
	if got := e.chat(alice, chatA.ID.String()).Status; got != domain.ChatInProgress {
		t.Fatalf("with no worker nothing may happen, chat a is %s", got)
	}
	e.StartWorker()

	testenv.Eventually(t, 15*time.Second, "chat a closes by timeout", func() bool {
		c, err := e.Store.GetChat(context.Background(), chatA.ID)
		return err == nil && c.Status == domain.ChatClosed && c.CloseReason != nil && *c.CloseReason == "timeout"
	})
	testenv.Eventually(t, 15*time.Second, "chat b's offer expires and alice becomes inactive", func() bool {
		c, err := e.Store.GetChat(context.Background(), chatB.ID)
		u, err2 := e.Store.GetUser(context.Background(), mustUUID(t, alice.ID))
		return err == nil && err2 == nil && c.Status == domain.ChatWaiting && c.AgentID == nil && u.Status == domain.AgentInactive
	})
	testenv.Eventually(t, 15*time.Second, "the message sent while down is stored", func() bool {
		return e.count(`SELECT count(*) FROM messages WHERE external_id = 'c-1'`) == 1
	})
	e.recordHistory("chat-restart-timeout", "chat/"+ch+"/a")
	e.recordHistory("chat-offer-expired", "chat/"+ch+"/b")
	if n := e.timersFired("chat/" + ch + "/a"); n != 1 {
		t.Fatalf("completion timer of chat a fired %d times, want 1", n)
	}
	if n := e.timersFired("chat/" + ch + "/b"); n != 1 {
		t.Fatalf("accept timer of chat b fired %d times, want 1", n)
	}
}

// An offer that expires goes to the next free agent in the expiry's own
// step: the chat's history holds the accept timer and no offer signal.
func TestOfferExpiryOffersTheChatToTheNextFreeAgent(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.agent("alice"), e.agent("bob")
	q := e.queue("Support", domain.RuleAvailableAgent, 0, alice, bob)
	ch := e.channel(q)
	e.setting(models.SettingAcceptTimeout, "0.05")
	e.activate(alice)

	e.must(200, e.inbound(ch, "x", "x-1", "hello"), "inbound")
	chat := e.waitOffer(alice)
	// Bob gets a minute once the offer comes to him; alice's 3 s are armed.
	e.setting(models.SettingAcceptTimeout, "1")
	e.activate(bob)
	offered := e.waitOffer(bob)
	if offered.ID != chat.ID {
		t.Fatalf("bob was offered %s, want the chat alice let expire (%s)", offered.ID, chat.ID)
	}
	u, err := e.Store.GetUser(context.Background(), mustUUID(t, alice.ID))
	if err != nil || u.Status != domain.AgentInactive {
		t.Fatalf("alice let the offer expire: want inactive, got %+v %v", u.Status, err)
	}
	e.must(200, e.Do("POST", "/api/v1/chats/"+chat.ID.String()+"/accept", bob.Token, nil), "bob accepts")
	e.must(200, e.Do("POST", "/api/v1/chats/"+chat.ID.String()+"/close", bob.Token, nil), "bob closes")
	wf := "chat/" + ch + "/x"
	testenv.Eventually(t, 15*time.Second, "the chat's workflow completes", func() bool {
		d, err := e.Temporal.DescribeWorkflowExecution(context.Background(), wf, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus().String() == "Completed"
	})
	if n := e.timersFired(wf); n != 1 {
		t.Fatalf("accept timers fired: %d, want alice's one", n)
	}
	if n := e.historyEvents(wf, func(ev *historypb.HistoryEvent) bool {
		return ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == workflows.SignalOffer
	}); n != 0 {
		t.Fatalf("the chat was told of an offer by %d signals, want none: the expiry offers it itself", n)
	}
	e.recordHistory("chat-offer-reclaimed", wf)
}
