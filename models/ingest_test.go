package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

// directChat opens a chat whose later messages the API stores itself.
func (f *fixture) directChat(conv string) uuid.UUID {
	f.t.Helper()
	id := uuid.New()
	res, err := f.s.Ingest(f.ctx, models.IngestInput{ChatID: id, OpenChat: true, WorkflowID: "wf-" + conv, ChannelID: f.ch.ID,
		Message: domain.InboundMessage{ConversationID: conv, SenderID: "cust-" + conv, SenderName: "Cust", ExternalID: "m-" + conv, Text: "hi"}})
	f.must(err)
	if !res.Stored {
		f.t.Fatalf("first message not stored: %+v", res)
	}
	opened, err := f.s.OpenGate(f.ctx, id, 0)
	f.must(err)
	if !opened {
		f.t.Fatal("gate not opened")
	}
	return id
}

// inProgressAfterReply makes the chat in progress with the agent's reply as its last message.
func (f *fixture) inProgressAfterReply(chatID, agentID uuid.UUID) {
	f.t.Helper()
	f.accept(chatID, agentID)
	_, err := f.s.RecordOutbound(f.ctx, &models.Message{ID: uuid.New(), ChatID: chatID, ChannelID: f.ch.ID, AgentID: &agentID, Kind: "text", Text: "reply"})
	f.must(err)
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	f.must(f.s.Raw(f.ctx, &n, query, args...))
	return n
}

func msg(conv, ext string) domain.InboundMessage {
	return domain.InboundMessage{ConversationID: conv, SenderID: "cust-" + conv, ExternalID: ext, Text: "text " + ext}
}

func TestStoreInOpenChat(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	agent := f.agent("a", nil, false)
	chat := f.directChat("c1")

	res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "m2"))
	f.must(err)
	if !res.Handled || res.Duplicate || res.ChatID != chat || res.Notices != 0 {
		t.Fatalf("message to a waiting direct chat: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM events WHERE type = 'message.created' AND chat_id = ?`, chat); n != 2 {
		t.Fatalf("want an event per message (2), got %d", n)
	}
	again, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "m2"))
	f.must(err)
	if !again.Handled || !again.Duplicate {
		t.Fatalf("redelivery: %+v", again)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE chat_id = ?`, chat); n != 2 {
		t.Fatalf("redelivery stored again: %d messages", n)
	}

	// In progress with the agent's reply last: the customer's answer queues a
	// notice for the timer, a file one for its download.
	f.inProgressAfterReply(chat, agent)
	m := msg("c1", "m3")
	m.Attachments = []domain.AttachmentRef{{Kind: "image", URL: "http://127.0.0.1/x.png"}}
	res, err = f.s.StoreInOpenChat(f.ctx, f.ch.ID, m)
	f.must(err)
	if !res.Handled || res.Notices != 2 {
		t.Fatalf("answer with a file: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM chat_notices WHERE chat_id = ? AND kind IN ('answered', 'attachment')`, chat); n != 2 {
		t.Fatalf("notices queued: %d, want 2", n)
	}
	// The file is recorded pending on the message, and its notice names it.
	if n := f.count(`SELECT count(*) FROM attachments a JOIN messages m ON m.id = a.message_id
		JOIN chat_notices n ON n.kind = 'attachment' AND n.ref = a.id::text AND n.chat_id = m.chat_id
		WHERE m.external_id = 'm3' AND m.chat_id = ? AND m.kind = 'text' AND m.status = 'received'
		AND a.kind = 'image' AND a.remote_url = 'http://127.0.0.1/x.png' AND a.status = 'pending' AND a.channel_id = m.channel_id`, chat); n != 1 {
		t.Fatalf("attachment and its notice as stored: %d rows, want 1", n)
	}
	res, err = f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "m4"))
	f.must(err)
	if res.Notices != 0 {
		t.Fatalf("a second answer before the agent replies tells nothing new: %+v", res)
	}

	// A chat opened by an earlier release, and a closed chat, are not stored here.
	f.chat("legacy")
	if res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("legacy", "l2")); err != nil || res.Handled {
		t.Fatalf("chat of an earlier release: %+v %v", res, err)
	}
	f.must(f.s.CloseChat(f.ctx, chat, domain.CloseByAgent))
	if res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "m5")); err != nil || res.Handled {
		t.Fatalf("closed chat: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE external_id = 'm5'`); n != 0 {
		t.Fatal("a message was written into a closed chat")
	}
}

// The agent reads the chat while a message waits for the chat row: the
// message commits after the reading, so it must count as unread.
func TestMessageWaitingForTheChatStaysUnreadAfterARead(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	f.must(setSimultaneous(f, "1000"))
	agent := f.agent("a", nil, false)
	chat := f.directChat("c1")
	f.inProgressAfterReply(chat, agent)

	holder, err := f.s.BeginRaw(f.ctx) // another writer of the chat row
	f.must(err)
	f.must(holder.Exec(`SELECT 1 FROM chats WHERE id = ? FOR UPDATE`, chat).Error)
	done := make(chan error, 1)
	go func() {
		_, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "late"))
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); f.count(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the store never waited for the chat row")
		}
	}
	// The holder is the agent's reading, after the store began.
	f.must(holder.Exec(`UPDATE chats SET agent_read_at = ? WHERE id = ?`, time.Now().UTC(), chat).Error)
	f.must(holder.Commit().Error)
	f.must(<-done)
	if _, n, err := f.s.UnreadCounts(f.ctx, agent); err != nil || n != 1 {
		t.Fatalf("unread messages after the reading: %d (%v), want the late message", n, err)
	}
}

// The completion timer fires while the customer's message is being stored:
// either the message is in the chat and the chat stays open, or the chat
// closed and the message was not stored (it opens the next chat). Never a
// message in a closed chat, never neither.
func TestTimeoutCloseRacesMessage(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	f.must(setSimultaneous(f, "1000"))
	agent := f.agent("a", nil, false)
	outcomes := map[string]int{}
	for i := range 40 {
		conv := "race-" + uuid.NewString()
		chat := f.directChat(conv)
		f.inProgressAfterReply(chat, agent)
		var (
			wg     sync.WaitGroup
			res    models.DirectResult
			closed bool
			e1, e2 error
		)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			res, e1 = f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg(conv, conv+"-late"))
		}()
		go func() {
			defer wg.Done()
			<-start
			closed, e2 = f.s.CloseOnTimeout(f.ctx, chat)
		}()
		close(start)
		wg.Wait()
		f.must(e1)
		f.must(e2)
		stored := f.count(`SELECT count(*) FROM messages WHERE chat_id = ? AND external_id = ?`, chat, conv+"-late")
		status := ""
		f.must(f.s.Raw(f.ctx, &status, `SELECT status FROM chats WHERE id = ?`, chat))
		switch {
		case closed && !res.Handled && stored == 0 && status == domain.ChatClosed:
			outcomes["closed, message for the next chat"]++
		case !closed && res.Handled && stored == 1 && status == domain.ChatInProgress:
			outcomes["open with the message"]++
		default:
			t.Fatalf("round %d: closed=%v handled=%v stored=%d status=%s", i, closed, res.Handled, stored, status)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// Transfers and an agent's close racing a message: the message is stored in
// the chat while it is open, or left for the next chat once it closed.
func TestTransferAndCloseRaceMessage(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	f.must(setSimultaneous(f, "1000"))
	agent := f.agent("a", nil, false)
	other := &models.Queue{Name: "Other", RoutingRule: domain.RuleAllAgents}
	f.must(f.s.CreateQueue(f.ctx, other))
	for i := range 20 {
		conv := "t-" + uuid.NewString()
		chat := f.directChat(conv)
		f.inProgressAfterReply(chat, agent)
		var wg sync.WaitGroup
		var res models.DirectResult
		var e1, e2 error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			res, e1 = f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg(conv, conv+"-x"))
		}()
		go func() {
			defer wg.Done()
			<-start
			if i%2 == 0 {
				_, e2 = f.s.TransferToQueue(f.ctx, chat, other.ID)
			} else {
				e2 = f.s.CloseChat(f.ctx, chat, domain.CloseByAgent)
			}
		}()
		close(start)
		wg.Wait()
		f.must(e1)
		f.must(e2)
		stored := f.count(`SELECT count(*) FROM messages WHERE chat_id = ? AND external_id = ?`, chat, conv+"-x")
		if i%2 == 0 && (!res.Handled || stored != 1) {
			t.Fatalf("transfer: a message to a chat that stays open must be stored in it: %+v stored=%d", res, stored)
		}
		if i%2 == 1 && res.Handled != (stored == 1) {
			t.Fatalf("close: handled=%v but stored=%d", res.Handled, stored)
		}
	}
}

func TestNoticesDrainedWithRetries(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	agent := f.agent("a", nil, false)
	chat := f.directChat("n1")
	f.inProgressAfterReply(chat, agent)
	_, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("n1", "n2"))
	f.must(err)
	fail := true
	var got []models.ChatNotice
	deliver := func(n models.ChatNotice) error {
		if fail {
			return errTest
		}
		got = append(got, n)
		return nil
	}
	n, err := f.s.DrainNotices(f.ctx, 10, deliver)
	f.must(err)
	if n != 1 || f.count(`SELECT count(*) FROM chat_notices WHERE attempts = 1 AND last_error IS NOT NULL`) != 1 {
		t.Fatalf("a failed delivery is kept for a retry: claimed %d", n)
	}
	fail = false
	// Retried once its backoff (100 ms after the first failure) has passed.
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := f.s.DrainNotices(f.ctx, 10, deliver); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].ChatID != chat || got[0].Kind != models.NoticeAnswered || got[0].WorkflowID != "wf-n1" {
		t.Fatalf("delivered: %+v", got)
	}
	if backlog, err := f.s.NoticeBacklog(f.ctx); err != nil || backlog != 0 {
		t.Fatalf("backlog %d %v", backlog, err)
	}
}

var errTest = errors.New("temporal did not answer")

func setSimultaneous(f *fixture, v string) error {
	_, err := f.s.SetSetting(f.ctx, models.SettingSimultaneousChats, v)
	return err
}

// Messages signalled to a conversation are numbered in order; the chat takes
// messages from Postgres only once it received the last number, and a failed
// signal takes its number back.
func TestGateKeepsOrder(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	var got []int64
	signal := func(m domain.InboundMessage) error { got = append(got, m.GateSeq); return nil }
	f.must(f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-1"), signal))
	f.must(f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-2"), signal))
	if err := f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-3"), func(domain.InboundMessage) error { return errTest }); !errors.Is(err, errTest) {
		t.Fatalf("failed signal: %v", err)
	}
	f.must(f.s.SignalThroughGate(f.ctx, f.ch.ID, msg("g1", "g1-4"), signal))
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("numbers %v, want 1 2 3 (the failed signal's number taken back)", got)
	}
	id := uuid.New()
	_, err := f.s.Ingest(f.ctx, models.IngestInput{ChatID: id, OpenChat: true, WorkflowID: "wf-g1", ChannelID: f.ch.ID, Message: msg("g1", "g1-1")})
	f.must(err)
	if res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("g1", "g1-5")); err != nil || res.Handled {
		t.Fatalf("gate closed: the message goes to the workflow: %+v %v", res, err)
	}
	if opened, err := f.s.OpenGate(f.ctx, id, 2); err != nil || opened {
		t.Fatalf("message 3 is on its way, yet the gate opened: %v %v", opened, err)
	}
	if opened, err := f.s.OpenGate(f.ctx, id, 3); err != nil || !opened {
		t.Fatalf("every message received, gate: %v %v", opened, err)
	}
	if res, err := f.s.StoreInOpenChat(f.ctx, f.ch.ID, msg("g1", "g1-5")); err != nil || !res.Handled {
		t.Fatalf("gate open: stored by the API: %+v %v", res, err)
	}
}

// A message stored by the API wakes no event reader at its commit (NOTIFY
// would serialise every such commit server-wide); WakeEvents, sent after the
// commit, does. Notifications arrive in commit order, so a marker sent after
// the store must be the next one a listener gets.
func TestDirectStoreDefersItsEventWakeup(t *testing.T) {
	dsn, s := testenv.NewDatabase(t)
	f := &fixture{t: t, ctx: context.Background(), s: s}
	f.queue = &models.Queue{Name: "Q", RoutingRule: domain.RuleAllAgents}
	f.must(s.CreateQueue(f.ctx, f.queue))
	f.ch = &models.Channel{Provider: "api", Name: "C", Active: true, QueueID: f.queue.ID, Secret: "s"}
	f.must(s.CreateChannel(f.ctx, f.ch))
	f.directChat("c1")

	listener, err := pgx.Connect(f.ctx, dsn)
	f.must(err)
	defer listener.Close(f.ctx)
	_, err = listener.Exec(f.ctx, "LISTEN omnichat_events")
	f.must(err)
	next := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(ctx)
		f.must(err)
		return n.Payload
	}
	marker := func(p string) {
		_, err := listener.Exec(f.ctx, `SELECT pg_notify('omnichat_events', $1)`, p)
		f.must(err)
	}

	marker("before")
	for next() != "before" {
	}
	res, err := s.StoreInOpenChat(f.ctx, f.ch.ID, msg("c1", "m2"))
	f.must(err)
	if !res.Handled || !res.Stored {
		t.Fatalf("message not stored: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM events WHERE type = 'message.created' AND chat_id = ?`, res.ChatID); n != 2 {
		t.Fatalf("want the message's event in the log, got %d events", n)
	}
	marker("after")
	if p := next(); p != "after" {
		t.Fatalf("the store's commit notified (payload %q) instead of leaving the wake-up to its writer", p)
	}
	f.must(s.WakeEvents(f.ctx))
	if p := next(); p != "" {
		t.Fatalf("WakeEvents: want an empty wake-up, got %q", p)
	}
	// Other writers still notify at commit.
	f.directChat("c2")
	if p := next(); p != "" {
		t.Fatalf("opening a chat: want its wake-up at commit, got %q", p)
	}
}
