package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

// sse is one received Server-Sent Event.
type sse struct {
	ID, Type string
	Data     map[string]any
}

// stream is an open GET /api/v1/events.
type stream struct {
	t      *testing.T
	status int
	events chan sse
	cancel context.CancelFunc
}

// openStream connects as token (a bearer token), resuming after lastID when set.
func openStream(t *testing.T, url, token, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	s := &stream{t: t, status: resp.StatusCode, events: make(chan sse, 1000), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return s
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.Type != "" {
					s.events <- cur
				}
				cur = sse{}
			case strings.HasPrefix(line, "id: "):
				cur.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				cur.Type = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data)
			}
		}
		close(s.events)
	}()
	return s
}

func (s *stream) close() { s.cancel() }

// next waits for the next event.
func (s *stream) next(within time.Duration) sse {
	s.t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return e
	case <-time.After(within):
		s.t.Fatalf("no event within %s", within)
		return sse{}
	}
}

// none asserts no event arrives for a while.
func (s *stream) none(d time.Duration) {
	s.t.Helper()
	select {
	case e := <-s.events:
		s.t.Fatalf("unexpected event %s %s %v", e.ID, e.Type, e.Data)
	case <-time.After(d):
	}
}

// noneOf asserts no event of type typ arrives for a while (others, such as
// repeats of what committed before the stream opened, are let through).
func (s *stream) noneOf(typ string, d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-s.events:
			if e.Type == typ {
				s.t.Fatalf("unexpected event %s %s %v", e.ID, e.Type, e.Data)
			}
		case <-deadline:
			return
		}
	}
}

// nextOf skips events until one of type typ for chat arrives. A stream
// starts at the oldest transaction still running anywhere in the cluster
// (other tests' databases included), so it may first repeat events that
// committed just before it opened.
func (s *stream) nextOf(typ, chat string, within time.Duration) sse {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		e := s.next(time.Until(deadline))
		if e.Type == typ && (chat == "" || e.Data["chat_id"] == chat) {
			return e
		}
	}
}

// eventsFixture is an API over a fresh database, with a direct connection
// for making changes the way services do: in transactions.
type eventsFixture struct {
	t     *testing.T
	ctx   context.Context
	dsn   string
	store *models.Store
	svc   *service.Services
	url   string
	db    *pgx.Conn
	queue uuid.UUID
	chan_ uuid.UUID
}

func newEventsFixture(t *testing.T, deps service.Deps) *eventsFixture {
	t.Helper()
	dsn, store := testenv.NewDatabase(t)
	f := &eventsFixture{t: t, ctx: context.Background(), dsn: dsn, store: store}
	f.svc, f.url = f.replica(deps)
	db, err := pgx.Connect(f.ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	f.db = db
	f.queue = f.newQueue("available_agent")
	f.chan_ = uuid.New()
	f.exec(`INSERT INTO channels (id, provider, name, queue_id, secret) VALUES ($1, 'api', 'web', $2, 's')`, f.chan_, f.queue)
	return f
}

// replica is one more API on the same database, with its own pool.
func (f *eventsFixture) replica(deps service.Deps) (*service.Services, string) {
	db, err := models.Open(f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	deps.Store = models.NewStore(db)
	deps.Runtime = &unavailable{}
	deps.TemporalHealth = func(context.Context) error { return nil }
	deps.Logger = testenv.Logger()
	svc := service.New(deps)
	srv := httptest.NewServer(api.New(api.Deps{Services: svc, Logger: deps.Logger, MaxBodyBytes: 1 << 20, RateLimitPerToken: 1000, WebhookRateLimit: 1000}))
	f.t.Cleanup(func() {
		svc.Events.Close()
		srv.Close()
		deps.Store.Close()
	})
	return svc, srv.URL
}

func (f *eventsFixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *eventsFixture) newQueue(rule string) uuid.UUID {
	id := uuid.New()
	f.exec(`INSERT INTO queues (id, name, routing_rule) VALUES ($1, $2, $3)`, id, "q-"+id.String()[:8], rule)
	return id
}

// user makes a user (an admin when admin) in the given queues and returns its ID and token.
func (f *eventsFixture) user(admin bool, queues ...uuid.UUID) (uuid.UUID, string) {
	f.t.Helper()
	u := &models.User{Name: "u", Email: uuid.NewString() + "@example.com", CanManageChats: admin}
	if err := f.store.CreateUser(f.ctx, u); err != nil {
		f.t.Fatal(err)
	}
	for _, q := range queues {
		f.exec(`INSERT INTO queue_users (queue_id, user_id) VALUES ($1, $2)`, q, u.ID)
	}
	_, token, err := f.store.CreateToken(f.ctx, u.ID, "t")
	if err != nil {
		f.t.Fatal(err)
	}
	return u.ID, token
}

// chat opens a chat in queue with the given status and agent.
func (f *eventsFixture) chat(queue uuid.UUID, status string, agent *uuid.UUID) string {
	f.t.Helper()
	contact, chat := uuid.New(), uuid.New()
	f.exec(`INSERT INTO contacts (id, channel_id, external_id, name) VALUES ($1, $2, $3, 'Customer')`, contact, f.chan_, contact.String())
	f.exec(`INSERT INTO chats (id, channel_id, queue_id, contact_id, conversation_id, workflow_id, status, agent_id, offered_at)
		VALUES ($1, $2, $3, $4, $5, $5, $6, $7, CASE WHEN $6::text = 'offered' THEN now() END)`, chat, f.chan_, queue, contact, contact.String(), status, agent)
	return chat.String()
}

// inbound stores a customer message in a chat and returns its ID.
func (f *eventsFixture) inbound(chat, text string) string {
	f.t.Helper()
	id := uuid.NewString()
	f.exec(`INSERT INTO messages (id, chat_id, channel_id, direction, external_id, text, status) VALUES ($1::text::uuid, $2, $3, 'inbound', $1::text, $4, 'received')`,
		id, chat, f.chan_, text)
	return id
}

func TestEventsInOrderThenResumedWithLastEventID(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, token := f.user(false, f.queue)
	s := openStream(t, f.url, token, "")
	if ready := s.next(10 * time.Second); ready.Type != "ready" || ready.ID == "" {
		t.Fatalf("first event = %+v, want ready with an id", ready)
	}
	chat := f.chat(f.queue, "offered", &agent)
	m1 := f.inbound(chat, "hello")
	f.exec(`UPDATE chats SET status = 'in_progress', accepted_at = now() WHERE id = $1`, chat)
	var got []sse
	for _, want := range []string{"chat.offered", "message.created", "chat.assigned"} {
		e := s.next(10 * time.Second)
		if e.Type != want || e.Data["chat_id"] != chat {
			t.Fatalf("event %d = %s %v, want %s of chat %s", len(got), e.Type, e.Data, want, chat)
		}
		got = append(got, e)
	}
	if got[1].Data["message_id"] != m1 || got[1].Data["direction"] != "inbound" {
		t.Fatalf("message.created = %v, want inbound message %s", got[1].Data, m1)
	}
	s.close()

	// Missed while away: a reply sent, its status, the chat read, closed.
	reply := uuid.NewString()
	f.exec(`INSERT INTO messages (id, chat_id, channel_id, direction, text, status, agent_id) VALUES ($1, $2, $3, 'outbound', 'hi', 'sending', $4)`, reply, chat, f.chan_, agent)
	f.exec(`UPDATE messages SET status = 'sent', external_id = 'x1' WHERE id = $1`, reply)
	f.exec(`UPDATE chats SET agent_read_at = now() WHERE id = $1`, chat)
	f.exec(`UPDATE chats SET status = 'closed', closed_at = now(), close_reason = 'agent' WHERE id = $1`, chat)

	r := openStream(t, f.url, token, got[2].ID)
	if e := r.next(10 * time.Second); e.Type != "ready" {
		t.Fatalf("resumed stream starts with %s, want ready", e.Type)
	}
	for _, want := range []string{"message.created", "message.status", "unread.changed", "chat.closed"} {
		e := r.next(10 * time.Second)
		if e.Type != want {
			t.Fatalf("resumed: got %s %v, want %s", e.Type, e.Data, want)
		}
		switch want {
		case "message.status":
			if e.Data["status"] != "sent" {
				t.Fatalf("message.status = %v, want sent", e.Data)
			}
		case "unread.changed":
			if e.Data["unread_messages"] != float64(0) {
				t.Fatalf("unread.changed = %v, want 0", e.Data)
			}
		case "chat.closed":
			if e.Data["close_reason"] != "agent" {
				t.Fatalf("chat.closed = %v, want reason agent", e.Data)
			}
		}
	}
	r.none(time.Second)
}

// An event whose transaction began first but commits last is delivered
// before the later one, and never skipped by a reader that already saw the later one.
func TestEventsCommittedOutOfOrderAreNotSkipped(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s := openStream(t, f.url, token, "")
	s.next(10 * time.Second) // ready

	conn, err := pgx.Connect(f.ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	first, err := conn.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Rollback(f.ctx) }()
	early := uuid.NewString()
	if _, err := first.Exec(f.ctx, `INSERT INTO messages (id, chat_id, channel_id, direction, external_id, text, status) VALUES ($1::text::uuid, $2, $3, 'inbound', $1::text, 'early', 'received')`,
		early, chat, f.chan_); err != nil {
		t.Fatal(err)
	}
	late := f.inbound(chat, "late")            // a later transaction, committed first
	s.noneOf("message.created", 2*time.Second) // held back while the earlier one is open
	if err := first.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	a, b := s.nextOf("message.created", chat, 10*time.Second), s.nextOf("message.created", chat, 10*time.Second)
	if a.Data["message_id"] != early || b.Data["message_id"] != late {
		t.Fatalf("got %v then %v, want %s then %s", a.Data["message_id"], b.Data["message_id"], early, late)
	}
	// A reader resuming from the early one still gets the late one.
	r := openStream(t, f.url, token, a.ID)
	if e := r.nextOf("message.created", chat, 10*time.Second); e.Data["message_id"] != late {
		t.Fatalf("resumed after the early event: got %v, want %s", e.Data, late)
	}
}

// A transaction left open in another database of the same PostgreSQL (a
// dump, another application, a parallel test) does not hold streams back.
func TestEventsNotHeldBackByAnotherDatabase(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s := openStream(t, f.url, token, "")
	s.next(10 * time.Second) // ready

	other, _ := testenv.NewDatabase(t)
	conn, err := pgx.Connect(f.ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	open, err := conn.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = open.Rollback(f.ctx) }()
	if _, err := open.Exec(f.ctx, `SELECT pg_current_xact_id()`); err != nil { // holds a transaction ID
		t.Fatal(err)
	}
	id := f.inbound(chat, "while another database has a transaction open")
	if e := s.nextOf("message.created", chat, 10*time.Second); e.Data["message_id"] != id {
		t.Fatalf("got %v, want %s", e.Data["message_id"], id)
	}
}

func TestEventsNoneForARolledBackChange(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s := openStream(t, f.url, token, "")
	s.next(10 * time.Second)
	tx, err := f.db.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(f.ctx, `INSERT INTO messages (id, chat_id, channel_id, direction, external_id, text, status) VALUES ($1::text::uuid, $2, $3, 'inbound', $1::text, 'gone', 'received')`,
		uuid.NewString(), chat, f.chan_); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	kept := f.inbound(chat, "kept")
	if e := s.nextOf("message.created", chat, 10*time.Second); e.Data["message_id"] != kept {
		t.Fatalf("first event after a rollback = %v, want the kept message %s", e.Data, kept)
	}
	s.noneOf("message.created", time.Second)
}

func TestEventsResyncPastRetention(t *testing.T) {
	f := newEventsFixture(t, service.Deps{EventRetention: time.Millisecond})
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s := openStream(t, f.url, token, "")
	s.next(10 * time.Second)
	f.inbound(chat, "one")
	old := s.nextOf("message.created", chat, 10*time.Second)
	f.inbound(chat, "two")
	s.nextOf("message.created", chat, 10*time.Second)
	s.close()
	time.Sleep(5 * time.Millisecond) // older than the 1 ms retention
	if n, err := f.svc.Events.Prune(f.ctx); err != nil || n == 0 {
		t.Fatalf("prune: %d events, %v", n, err)
	}
	r := openStream(t, f.url, token, old.ID)
	if e := r.next(10 * time.Second); e.Type != "resync" {
		t.Fatalf("resuming before the pruned events: first event %s, want resync", e.Type)
	}
	// After a resync the live tail follows.
	third := f.inbound(chat, "three")
	if e := r.nextOf("message.created", chat, 10*time.Second); e.Data["message_id"] != third {
		t.Fatalf("after resync: %v, want message %s", e.Data, third)
	}
	if bad := openStream(t, f.url, token, "not-an-id"); bad.status != http.StatusUnprocessableEntity {
		t.Fatalf("malformed Last-Event-ID: %d, want 422", bad.status)
	}
}

// An agent sees the chats offered or assigned to them and the waiting chats
// of their all_agents queues; never another agent's chat. Admins see all.
func TestEventsOnlyToWhoMaySeeThem(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	shared := f.newQueue("all_agents")
	alice, aliceToken := f.user(false, f.queue, shared)
	bob, bobToken := f.user(false, f.queue)
	_, adminToken := f.user(true)
	as, bs, ad := openStream(t, f.url, aliceToken, ""), openStream(t, f.url, bobToken, ""), openStream(t, f.url, adminToken, "")
	for _, s := range []*stream{as, bs, ad} {
		s.next(10 * time.Second)
	}
	alicesChat := f.chat(f.queue, "offered", &alice)
	f.inbound(alicesChat, "for alice")
	waiting := f.chat(shared, "waiting", nil) // offered to alice's all_agents queue
	f.exec(`UPDATE chats SET status = 'in_progress', agent_id = $2, accepted_at = now() WHERE id = $1`, waiting, alice)
	bobsChat := f.chat(f.queue, "offered", &bob)

	for _, want := range []struct{ typ, chat string }{{"chat.offered", alicesChat}, {"message.created", alicesChat},
		{"chat.offered", waiting}, {"chat.offer_withdrawn", waiting}, {"chat.assigned", waiting}} {
		e := as.next(10 * time.Second)
		if e.Type != want.typ || e.Data["chat_id"] != want.chat {
			t.Fatalf("alice got %s %v, want %s of %s", e.Type, e.Data["chat_id"], want.typ, want.chat)
		}
	}
	if e := bs.next(10 * time.Second); e.Type != "chat.offered" || e.Data["chat_id"] != bobsChat {
		t.Fatalf("bob's first event: %s %v, want his own offer %s", e.Type, e.Data["chat_id"], bobsChat)
	}
	as.none(time.Second)
	bs.none(0)
	seen := map[string]bool{}
	for len(seen) < 3 {
		seen[ad.next(10 * time.Second).Data["chat_id"].(string)] = true
	}
	if !seen[alicesChat] || !seen[waiting] || !seen[bobsChat] {
		t.Fatalf("admin saw %v, want all three chats", seen)
	}
}

// Two API replicas on one database both deliver an event, however it was written.
func TestEventsReachStreamsOnEveryReplica(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	_, url2 := f.replica(service.Deps{})
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s1, s2 := openStream(t, f.url, token, ""), openStream(t, url2, token, "")
	s1.next(10 * time.Second)
	s2.next(10 * time.Second)
	start := time.Now()
	msg := f.inbound(chat, "to both")
	for i, s := range []*stream{s1, s2} {
		if e := s.nextOf("message.created", chat, 20*time.Second); e.Data["message_id"] != msg {
			t.Fatalf("replica %d got %v", i+1, e.Data)
		}
	}
	t.Logf("both replicas delivered the event %s after the commit", time.Since(start))
}

func TestEventsStreamsPerUserAreBounded(t *testing.T) {
	f := newEventsFixture(t, service.Deps{EventStreamsPerUser: 2})
	_, token := f.user(false, f.queue)
	_, other := f.user(false, f.queue)
	a, b := openStream(t, f.url, token, ""), openStream(t, f.url, token, "")
	a.next(10 * time.Second)
	b.next(10 * time.Second)
	if c := openStream(t, f.url, token, ""); c.status != http.StatusTooManyRequests {
		t.Fatalf("third stream: %d, want 429", c.status)
	}
	if o := openStream(t, f.url, other, ""); o.status != http.StatusOK {
		t.Fatalf("another user's stream: %d, want 200", o.status)
	}
	a.close()
	testenv.Eventually(t, 10*time.Second, "a closed stream frees its place", func() bool {
		c := openStream(t, f.url, token, "")
		defer c.close()
		return c.status == http.StatusOK
	})
}

// The heartbeat keeps the stream's position current, and a stream ends once
// its token is revoked.
func TestEventsHeartbeatCarriesPositionAndEndsRevokedStreams(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	svc, _ := f.replica(service.Deps{})
	srv := httptest.NewServer(api.New(api.Deps{Services: svc, Logger: testenv.Logger(), MaxBodyBytes: 1 << 20,
		RateLimitPerToken: 1000, WebhookRateLimit: 1000, EventHeartbeat: 200 * time.Millisecond}))
	t.Cleanup(func() { svc.Events.Close(); srv.Close() })
	agent, token := f.user(false, f.queue)
	other, _ := f.user(false, f.queue)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var ready string
	for l := range lines {
		if strings.HasPrefix(l, "id: ") {
			ready = strings.TrimPrefix(l, "id: ")
		}
		if l == "event: ready" {
			break
		}
	}
	// Events this agent may not see move the position the heartbeat reports.
	f.chat(f.queue, "offered", &other)
	var moved bool
	deadline := time.After(10 * time.Second)
	for !moved {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "id: ") {
				pos := strings.TrimPrefix(l, "id: ")
				if pos == ready {
					t.Fatalf("heartbeat repeated the position %s", pos)
				}
				moved = true
			}
			if strings.HasPrefix(l, "event: ") {
				t.Fatalf("got %q: another agent's chat", l)
			}
		case <-deadline:
			t.Fatal("no heartbeat with a new position")
		}
	}
	var tokenID string
	if err := f.db.QueryRow(f.ctx, `SELECT id::text FROM api_tokens WHERE user_id = $1`, agent).Scan(&tokenID); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, tokenID)
	deadline = time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return // the stream ended
			}
		case <-deadline:
			t.Fatal("the stream of a revoked token did not end")
		}
	}
}

// An agent's status events say why: chosen by the agent, or an offer expired.
func TestEventsAgentStatusSaysWhy(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, token := f.user(false, f.queue)
	s := openStream(t, f.url, token, "")
	s.next(10 * time.Second)
	if err := f.svc.Agents.SetStatus(f.ctx, agent, "active"); err != nil {
		t.Fatal(err)
	}
	if e := s.next(10 * time.Second); e.Type != "agent.status" || e.Data["status"] != "active" || e.Data["reason"] != "set_by_agent" {
		t.Fatalf("got %s %v, want agent.status active set_by_agent", e.Type, e.Data)
	}
	chat := f.chat(f.queue, "offered", &agent)
	s.nextOf("chat.offered", chat, 10*time.Second)
	if ok, err := f.store.ExpireOffer(f.ctx, uuid.MustParse(chat), agent, time.Time{}); err != nil || !ok {
		t.Fatalf("expire offer: %v %v", ok, err)
	}
	w := s.next(10 * time.Second)
	if w.Type != "chat.offer_withdrawn" || w.Data["reason"] != "expired" || w.Data["chat_id"] != chat {
		t.Fatalf("got %s %v, want the offer withdrawn as expired", w.Type, w.Data)
	}
	if e := s.next(10 * time.Second); e.Type != "agent.status" || e.Data["status"] != "inactive" || e.Data["reason"] != "offer_expired" {
		t.Fatalf("got %s %v, want agent.status inactive offer_expired", e.Type, e.Data)
	}
}

// A run of a chat action reaches the stream of the chat's agent as it starts
// and when it finishes, followed by the system note its outcome posts into
// the chat; another agent of the same queue sees neither.
func TestEventsActionRunChangesReachTheChatsAgentOnly(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	alice, aliceToken := f.user(false, f.queue)
	_, bobToken := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &alice)
	as, bs := openStream(t, f.url, aliceToken, ""), openStream(t, f.url, bobToken, "")
	as.next(10 * time.Second)
	bs.next(10 * time.Second)

	run := &models.ActionRun{ID: uuid.New(), Caption: "Create case", Kind: domain.ActionBuiltin, WorkflowType: domain.BuiltinCreateCase,
		ChatID: uuid.MustParse(chat), AgentID: alice, IdempotencyKey: "k1", Status: domain.RunStarted, CreatedAt: time.Now().UTC()}
	if _, _, err := f.store.CreateRun(f.ctx, run); err != nil {
		t.Fatal(err)
	}
	started := as.nextOf("action_run.changed", chat, 10*time.Second)
	if started.Data["run_id"] != run.ID.String() || started.Data["status"] != domain.RunStarted || started.Data["caption"] != "Create case" {
		t.Fatalf("first run event = %v, want run %s started", started.Data, run.ID)
	}
	if err := f.svc.Actions.Finish(f.ctx, run.ID, domain.RunCompleted, "CS-000042", ""); err != nil {
		t.Fatal(err)
	}
	done := as.next(10 * time.Second)
	if done.Type != "action_run.changed" || done.Data["run_id"] != run.ID.String() || done.Data["status"] != domain.RunCompleted ||
		done.Data["result"] != "CS-000042" || done.Data["error"] != nil {
		t.Fatalf("after the outcome: %s %v, want action_run.changed completed with result CS-000042", done.Type, done.Data)
	}
	note := as.next(10 * time.Second)
	if note.Type != "message.created" || note.Data["chat_id"] != chat || note.Data["direction"] != "system" {
		t.Fatalf("after the run event: %s %v, want the system note as message.created", note.Type, note.Data)
	}
	var text string
	if err := f.db.QueryRow(f.ctx, `SELECT text FROM messages WHERE id = $1`, note.Data["message_id"]).Scan(&text); err != nil || text != "Case CS-000042 created" {
		t.Fatalf("the note's text = %q (%v), want %q", text, err, "Case CS-000042 created")
	}
	// A retried outcome changes nothing and says nothing.
	if err := f.svc.Actions.Finish(f.ctx, run.ID, domain.RunCompleted, "CS-000042", ""); err != nil {
		t.Fatal(err)
	}
	as.noneOf("action_run.changed", time.Second)
	// Bob may see repeats of what committed before his stream opened, never this chat.
	for deadline := time.After(time.Second); ; {
		select {
		case e := <-bs.events:
			if e.Data["chat_id"] == chat {
				t.Fatalf("another agent got %s %v of alice's chat", e.Type, e.Data)
			}
			continue
		case <-deadline:
		}
		break
	}
}
