package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

// 20 agents of an all_agents queue accept the same chat at once: one wins.
func TestConcurrentAcceptsOneWinner(t *testing.T) {
	e := newEnv(t)
	var agents []agent
	for i := 0; i < 20; i++ {
		agents = append(agents, e.agent(fmt.Sprintf("agent%02d", i)))
	}
	q := e.queue("Everyone", domain.RuleAllAgents, 0, agents...)
	ch := e.channel(q)
	for _, a := range agents {
		e.activate(a)
	}
	e.must(200, e.inbound(ch, "race", "r-1", "who takes me?"), "inbound")
	chatID := e.waitChat(agents[0], "waiting", "").ID.String()

	var ok, conflict, other atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, a := range agents {
		wg.Add(1)
		go func(a agent) {
			defer wg.Done()
			<-start
			switch r := e.Do("POST", "/api/v1/chats/"+chatID+"/accept", a.Token, nil); r.Status {
			case 200:
				ok.Add(1)
			case 409:
				conflict.Add(1)
			default:
				other.Add(1)
				t.Errorf("accept answered %d: %s", r.Status, r.Body)
			}
		}(a)
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 19 {
		t.Fatalf("want exactly 1 accept and 19 conflicts, got %d and %d (%d other)", ok.Load(), conflict.Load(), other.Load())
	}
	if n := e.count(`SELECT count(*) FROM chats WHERE id = ? AND status = 'in_progress' AND agent_id IS NOT NULL`, chatID); n != 1 {
		t.Fatalf("chat should be in progress with one agent")
	}
}

// 50 chats arrive at once for 3 agents at SimultaneousChats 2: no agent ever
// holds more than 2; the rest wait and are served as chats close.
func TestFiftyChatsThreeAgentsNeverOverAssigned(t *testing.T) {
	e := newEnv(t)
	agents := []agent{e.agent("ann"), e.agent("bob"), e.agent("cid")}
	q := e.queue("Sales", domain.RuleAvailableAgent, 0, agents...)
	ch := e.channel(q)
	e.setting(models.SettingSimultaneousChats, "2")
	for _, a := range agents {
		e.activate(a)
	}

	// Watch the ledger the whole time.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var maxLoad atomic.Int32
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			var n int
			_ = e.Store.Raw(ctx, &n, `SELECT COALESCE(max(c), 0) FROM (SELECT count(*) AS c FROM chats WHERE status IN ('offered','in_progress') GROUP BY agent_id) x`)
			if int32(n) > maxLoad.Load() {
				maxLoad.Store(int32(n))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if r := e.inbound(ch, fmt.Sprintf("c%02d", i), fmt.Sprintf("m%02d", i), "hi"); r.Status != 200 {
				t.Errorf("inbound %d: %d %s", i, r.Status, r.Body)
			}
		}(i)
	}
	wg.Wait()
	testenv.Eventually(t, 20*time.Second, "all 50 chats exist", func() bool { return e.count(`SELECT count(*) FROM chats`) == 50 })

	// Agents work: accept what is offered, reply, close; until all 50 are closed.
	deadline := time.Now().Add(90 * time.Second)
	for e.count(`SELECT count(*) FROM chats WHERE status = 'closed'`) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 50 chats closed", e.count(`SELECT count(*) FROM chats WHERE status = 'closed'`))
		}
		for _, a := range agents {
			for _, c := range e.chats(a, "offered") {
				e.must(200, e.Do("POST", "/api/v1/chats/"+c.ID.String()+"/accept", a.Token, nil), "accept")
			}
			for _, c := range e.chats(a, "in_progress") {
				var closed api.ChatDTO
				e.must(200, e.Do("POST", "/api/v1/chats/"+c.ID.String()+"/close", a.Token, nil), "close").Decode(t, &closed)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-watched
	if m := maxLoad.Load(); m > 2 || m == 0 {
		t.Fatalf("max chats per agent observed %d, want 1..2", m)
	}
	if n := e.count(`SELECT count(DISTINCT agent_id) FROM chats`); n != 3 {
		t.Fatalf("all three agents should have served chats, %d did", n)
	}
}

// One message delivered ten times at once is stored once, in one chat.
func TestDuplicateDeliveriesStoredOnce(t *testing.T) {
	e := newEnv(t)
	q := e.queue("Dup", domain.RuleAllAgents, 0)
	ch := e.channel(q)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.inbound(ch, "dup-conv", "dup-msg", "same message"); r.Status != 200 {
				t.Errorf("delivery: %d %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	testenv.Eventually(t, 10*time.Second, "the message is stored", func() bool {
		return e.count(`SELECT count(*) FROM messages WHERE external_id = 'dup-msg'`) >= 1
	})
	// Every delivery was signalled; wait until the workflow has handled all ten.
	testenv.Eventually(t, 10*time.Second, "the workflow handled every delivery", func() bool {
		st, err := e.Chats.State(context.Background(), "chat/"+ch+"/dup-conv")
		return err == nil && st.ChatID != "" && e.pendingSignals("chat/"+ch+"/dup-conv") == 0
	})
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = 'dup-msg'`); n != 1 {
		t.Fatalf("want 1 message row, got %d", n)
	}
	if n := e.count(`SELECT count(*) FROM chats`); n != 1 {
		t.Fatalf("want 1 chat, got %d", n)
	}
}
