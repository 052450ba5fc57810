package models_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
)

// open opens a chat as a workflow of this release does: claiming a free
// agent and opening the gate in the opening transaction.
func (f *fixture) open(conv string, gateSeq int64) (uuid.UUID, models.IngestResult) {
	f.t.Helper()
	id := uuid.New()
	res, err := f.s.Ingest(f.ctx, claimInput(id, f.ch.ID, conv, gateSeq))
	f.must(err)
	if !res.Stored {
		f.t.Fatalf("first message not stored: %+v", res)
	}
	return id, res
}

func claimInput(chatID, channelID uuid.UUID, conv string, gateSeq int64) models.IngestInput {
	m := msg(conv, "m-"+conv)
	m.GateSeq = gateSeq
	return models.IngestInput{ChatID: chatID, OpenChat: true, WorkflowID: "wf-" + conv, ChannelID: channelID,
		Message: m, OpenGate: true, Claim: service.Decide}
}

func (f *fixture) setLimit(n int) {
	f.t.Helper()
	_, err := f.s.SetSetting(f.ctx, models.SettingSimultaneousChats, fmt.Sprint(n))
	f.must(err)
}

func TestOpeningOffersToAFreeAgentAndOpensTheGate(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	agent := f.agent("a", nil, false)

	chat, res := f.open("c1", 1)
	if res.Chat.Status != domain.ChatOffered || res.Chat.AgentID == nil || *res.Chat.AgentID != agent || res.Chat.OfferedAt == nil {
		t.Fatalf("want the chat offered to the free agent, got %+v", res.Chat)
	}
	if res.AcceptTimeout <= 0 {
		t.Fatalf("want the accept timeout with the offer, got %s", res.AcceptTimeout)
	}
	if !res.Chat.DirectIngest {
		t.Fatal("want the gate opened with the chat: nothing was signalled after its first message")
	}
	if n := f.count(`SELECT count(*) FROM chats WHERE id = ? AND status = 'offered' AND offer_notified AND direct_ingest`, chat); n != 1 {
		t.Fatal("the offer is not recorded as told to the workflow, or the gate is shut")
	}
	if n := f.count(`SELECT count(*) FROM events WHERE type = 'chat.offered' AND chat_id = ?`, chat); n != 1 {
		t.Fatalf("want one chat.offered event for the agent's panel, got %d", n)
	}
	// An earlier attempt of the same opening committed: the retry reports the
	// same offer and changes nothing.
	again, err := f.s.Ingest(f.ctx, claimInput(chat, f.ch.ID, "c1", 1))
	f.must(err)
	if again.Stored || again.Chat.Status != domain.ChatOffered || *again.Chat.AgentID != agent || !again.Chat.OfferedAt.Equal(*res.Chat.OfferedAt) || again.AcceptTimeout != res.AcceptTimeout {
		t.Fatalf("retried opening: %+v (accept %s)", again.Chat, again.AcceptTimeout)
	}
	// The dispatcher has nothing left to do or to tell.
	if got := f.assign(); len(got) != 0 {
		t.Fatalf("dispatcher offered again: %v", got)
	}
	missed, err := f.s.UnnotifiedOffers(f.ctx, *res.Chat.OfferedAt, 10)
	f.must(err)
	if len(missed) != 0 {
		t.Fatalf("claimed offer listed as untold: %+v", missed)
	}
}

func TestOpeningLeavesOlderWaitingChatsFirst(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	f.setLimit(1)
	a := f.agent("a", nil, false)
	c1, r1 := f.open("c1", 1)
	if r1.Chat.Status != domain.ChatOffered || *r1.Chat.AgentID != a {
		t.Fatalf("c1: %+v", r1.Chat)
	}
	c2, r2 := f.open("c2", 1)
	if r2.Chat.Status != domain.ChatWaiting || r2.Chat.AgentID != nil {
		t.Fatalf("c2 with every agent full: want waiting, got %+v", r2.Chat)
	}
	// A new agent is free, but c2 waits longer than c3: c3 must not jump it.
	b := f.agent("b", nil, false)
	_, r3 := f.open("c3", 1)
	if r3.Chat.Status != domain.ChatWaiting {
		t.Fatalf("c3 opened while an older chat waits: want waiting, got %+v", r3.Chat)
	}
	got := f.assign()
	if len(got) != 1 || got[c2] != b {
		t.Fatalf("dispatcher: want c2 offered to b, got %v", got)
	}
	if _, ok := got[c1]; ok {
		t.Fatal("c1 offered twice")
	}
}

func TestOpeningNeverOverAssigns(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	const limit, chats = 2, 24
	f.setLimit(limit)
	agents := []uuid.UUID{f.agent("a", nil, false), f.agent("b", nil, true), f.agent("c", nil, false)}
	var wg sync.WaitGroup
	errs := make(chan error, chats)
	for i := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.s.Ingest(f.ctx, claimInput(uuid.New(), f.ch.ID, fmt.Sprintf("p%d", i), 1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.must(err)
	}
	for _, a := range agents {
		if n := f.count(`SELECT count(*) FROM chats WHERE agent_id = ? AND status = 'offered'`, a); n != limit {
			t.Errorf("agent %s holds %d offers, want exactly SimultaneousChats (%d)", a, n, limit)
		}
	}
	if n := f.count(`SELECT count(*) FROM chats WHERE status = 'waiting'`); n != chats-limit*len(agents) {
		t.Errorf("want %d chats waiting, got %d", chats-limit*len(agents), n)
	}
}

func TestOpeningClaimsOnlyInAvailableAgentQueues(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	f.agent("a", nil, false)
	_, res := f.open("c1", 1)
	if res.Chat.Status != domain.ChatWaiting || res.Chat.AgentID != nil {
		t.Fatalf("all_agents queue: want waiting for any agent to accept, got %+v", res.Chat)
	}
}

func TestOpeningKeepsTheGateShutWhileAMessageIsOnItsWay(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	signal := func(domain.InboundMessage) error { return nil }
	f.must(f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-1"), signal))
	f.must(f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-2"), signal))

	chat, res := f.open("g1", 1) // the workflow has received only the first
	if res.Chat.DirectIngest {
		t.Fatal("gate opened while message 2 was still on its way to the workflow")
	}
	opened, err := f.s.OpenGate(f.ctx, chat, 2)
	f.must(err)
	if !opened {
		t.Fatal("gate not opened once the workflow received message 2")
	}
}

// A message that found no open chat while the chat's opening was in flight
// waits for the gate lock the opening holds; when the opening commits with
// the gate open, the message must not be signalled to the workflow (which
// would store it after the customer's next message, which the API stores at
// once): it is stored by the API, in order.
func TestMessageBehindAnOpeningThatOpensTheGateIsStoredInOrder(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	f.agent("a", nil, false)
	var signalled []string
	signal := func(m domain.InboundMessage) error { signalled = append(signalled, m.ExternalID); return nil }
	// What the webhook does with a plain message.
	receive := func(m domain.InboundMessage) error {
		for range 3 {
			res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, m)
			if err != nil || res.Handled {
				return err
			}
			if err := f.s.SignalThroughGate(f.ctx, f.ch.ID, m, signal); !errors.Is(err, models.ErrGateOpen) {
				return err
			}
		}
		return errors.New("gate kept changing")
	}
	f.must(receive(msg("o1", "m-o1"))) // opens the chat: signalled, number 1

	// The opening holds the gate lock (gate opened, not committed) while it decides.
	deciding, decided := make(chan struct{}), make(chan struct{})
	in := claimInput(uuid.New(), f.ch.ID, "o1", 1)
	in.Claim = func(snap models.RoutingSnapshot) []models.Offer {
		close(deciding)
		<-decided
		return service.Decide(snap)
	}
	opening := make(chan error, 1)
	go func() { _, err := f.s.Ingest(f.ctx, in); opening <- err }()
	<-deciding

	second := make(chan error, 1)
	go func() { second <- receive(msg("o1", "m2")) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.count(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second message never waited for the opening's gate lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(decided)
	f.must(<-opening)
	f.must(<-second)
	f.must(receive(msg("o1", "m3")))

	if len(signalled) != 1 || signalled[0] != "m-o1" {
		t.Fatalf("signalled to the workflow %v, want only the opening message: a later one is stored after m3", signalled)
	}
	var got []string
	f.must(f.s.Raw(f.ctx, &got, `SELECT external_id FROM messages WHERE chat_id = ? ORDER BY seq`, in.ChatID))
	if fmt.Sprint(got) != "[m-o1 m2 m3]" {
		t.Fatalf("messages in the chat: %v, want [m-o1 m2 m3]", got)
	}
}

// users.open_chats, which routing reads, follows every change of a chat's
// agent or status: offers, accepts, expiries, transfers, closes.
func TestOpenChatsCounterFollowsEveryChange(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	f.setLimit(10)
	a, b := f.agent("a", nil, false), f.agent("b", nil, false)
	check := func(step string) {
		t.Helper()
		var bad []string
		f.must(f.s.Raw(f.ctx, &bad, `SELECT u.email FROM users u WHERE u.open_chats <>
			(SELECT count(*) FROM chats c WHERE c.agent_id = u.id AND c.status IN ('offered', 'in_progress'))`))
		if len(bad) > 0 {
			t.Fatalf("after %s: open_chats wrong for %v", step, bad)
		}
	}
	var chats []uuid.UUID
	for i := range 6 {
		id, _ := f.open(fmt.Sprintf("k%d", i), 1)
		chats = append(chats, id)
	}
	check("offers made by the openings")
	if f.count(`SELECT sum(open_chats) FROM users WHERE id IN (?, ?)`, a, b) != 6 {
		t.Fatal("six offers not counted")
	}
	holder := func(chat uuid.UUID) uuid.UUID {
		var ids []uuid.UUID
		f.must(f.s.Raw(f.ctx, &ids, `SELECT agent_id FROM chats WHERE id = ?`, chat))
		return ids[0]
	}
	f.accept(chats[0], holder(chats[0]))
	check("accept")
	_, err := f.s.ExpireOffer(f.ctx, chats[1], holder(chats[1]), time.Time{})
	f.must(err)
	check("expiry")
	var back []uuid.UUID // the expiry made its agent inactive
	f.must(f.s.Raw(f.ctx, &back, `UPDATE users SET status = 'active' WHERE id IN (?, ?) RETURNING id`, a, b))
	other := a
	if holder(chats[2]) == a {
		other = b
	}
	f.must(f.s.TransferToAgent(f.ctx, chats[2], other))
	check("transfer to an agent")
	_, err = f.s.TransferToQueue(f.ctx, chats[3], f.queue.ID)
	f.must(err)
	check("transfer to a queue")
	f.must(f.s.CloseChat(f.ctx, chats[0], domain.CloseByAgent))
	f.must(f.s.CloseChat(f.ctx, chats[4], domain.CloseByAgent))
	check("closes")
	var gone []uuid.UUID
	f.must(f.s.Raw(f.ctx, &gone, `WITH m AS (DELETE FROM messages WHERE chat_id = ?) DELETE FROM chats WHERE id = ? RETURNING id`, chats[5], chats[5]))
	check("a deleted chat")
}

// An expiry repeated after its workflow task was lost (its first run had
// committed) must not take back a later offer of the chat to the same agent,
// made once the agent was back: it names the offer it expires.
func TestRepeatedExpiryLeavesALaterOfferToTheSameAgent(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	a := f.agent("a", nil, false)
	chat, r := f.open("c1", 1)
	if r.Chat.Status != domain.ChatOffered || *r.Chat.AgentID != a {
		t.Fatalf("c1: %+v", r.Chat)
	}
	// A minute back, so the later offer is later by more than the slack on
	// any machine.
	var firsts []time.Time
	f.must(f.s.Raw(f.ctx, &firsts, `UPDATE chats SET offered_at = offered_at - interval '1 minute' WHERE id = ? RETURNING offered_at`, chat))
	first := firsts[0]
	expired, err := f.s.ExpireOffer(f.ctx, chat, a, first)
	f.must(err)
	if !expired {
		t.Fatal("the offer named by its time was not taken back")
	}
	f.must(f.s.SetAgentStatus(f.ctx, a, domain.AgentActive))
	if got := f.assign(); got[chat] != a {
		t.Fatalf("dispatcher: want c1 offered to a again, got %v", got)
	}
	again, err := f.s.ExpireOffer(f.ctx, chat, a, first)
	f.must(err)
	if again {
		t.Fatal("the repeated expiry took back the later offer")
	}
	if n := f.count(`SELECT count(*) FROM chats WHERE id = ? AND status = 'offered' AND agent_id = ? AND offered_at > ?`, chat, a, first); n != 1 {
		t.Fatal("the later offer to a is gone")
	}
	if u, _ := f.s.GetUser(f.ctx, a); u.Status != domain.AgentActive {
		t.Fatalf("a, back and offered the chat again, was made %s", u.Status)
	}
}
