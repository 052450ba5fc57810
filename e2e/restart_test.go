package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

func (e *env) timersFired(workflowID string) int {
	it := e.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		if ev.GetEventType().String() == "TimerFired" {
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
