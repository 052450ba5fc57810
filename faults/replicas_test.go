package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnichat/omnichat/channels/apichannel"
)

// streamPoll is the event stream's safety-net poll (eventPollEvery in
// api/events.go). An event delivered well within it came from the
// LISTEN/NOTIFY wake-up, not from the poll.
const streamPoll = 5 * time.Second

// sseEvent is one Server-Sent Event with the time it arrived.
type sseEvent struct {
	id, typ string
	data    map[string]any
	at      time.Time
}

// sseStream is an open GET /api/v1/events.
type sseStream struct {
	name   string
	events chan sseEvent
	done   chan struct{}
	cancel context.CancelFunc
	mu     sync.Mutex
	lastID string
}

// openEvents opens the stream as token, resuming after lastID when set, and
// waits for its first block (ready, or resync).
func openEvents(t *testing.T, name, base, token, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open the stream on %s: %v", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("open the stream on %s: %d %s", name, resp.StatusCode, body)
	}
	s := &sseStream{name: name, events: make(chan sseEvent, 1000), done: make(chan struct{}), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.id != "" {
					s.mu.Lock()
					s.lastID = cur.id
					s.mu.Unlock()
				}
				if cur.typ != "" {
					cur.at = time.Now()
					s.events <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				cur.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.data)
			}
		}
	}()
	if first := s.next(t, 30*time.Second, "its first block", func(e sseEvent) bool { return true }); first.typ != "ready" {
		t.Fatalf("stream on %s starts with %s, want ready", name, first.typ)
	}
	return s
}

// LastID is the last event ID the stream received, as a browser keeps it.
func (s *sseStream) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// next skips events until one matches; it fails the test at the deadline or
// when the stream ends.
func (s *sseStream) next(t *testing.T, within time.Duration, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatalf("stream on %s ended while waiting for %s", s.name, what)
			}
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("stream on %s: no %s within %s", s.name, what, within)
		}
	}
}

func ofChat(typ, chat string) func(sseEvent) bool {
	return func(e sseEvent) bool { return e.typ == typ && e.data["chat_id"] == chat }
}

// TestTwoServeProcessesDeliverEveryEvent runs two `serve` processes and one
// `worker` of the built binary on one database and one Temporal: every
// change made through serve A reaches an event stream on serve B through
// PostgreSQL's LISTEN/NOTIFY (well within the streams' 5 s poll), and a
// stream on B killed with kill -9 resumes, on the restarted B, with the
// event missed meanwhile.
func TestTwoServeProcessesDeliverEveryEvent(t *testing.T) {
	if os.Getenv("OMNICHAT_FAULTS") == "" {
		t.Skip("the fault suite runs with OMNICHAT_FAULTS=1 (make test-faults)")
	}
	bin := buildBinary(t)
	began := time.Now()
	s := newStack(t, bin)

	// Serve B: the same settings on another port, its log in a folder of its own.
	bDir := filepath.Join(s.dir, "b")
	if err := os.Mkdir(bDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var bEnv []string
	for _, kv := range s.app.env {
		if !strings.HasPrefix(kv, "OMNICHAT_HTTP_ADDR=") {
			bEnv = append(bEnv, kv)
		}
	}
	bApp := &omnichat{t: t, bin: bin, dir: bDir, env: append(bEnv, "OMNICHAT_HTTP_ADDR="+bAddr), addr: bAddr}

	serveA := s.app.start("serve")
	worker := s.app.start("worker")
	serveB := bApp.start("serve")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of serve A's log:\n%s", s.app.logTail("serve", 40))
			t.Logf("end of serve B's log:\n%s", bApp.logTail("serve", 40))
			t.Logf("end of the worker's log:\n%s", s.app.logTail("worker", 40))
		}
	})
	s.app.waitReady(serveA)
	bApp.waitReady(serveB)

	// An admin sets up a queue, one Active agent and the API channel through A.
	a := "http://" + s.app.addr
	b := "http://" + bApp.addr
	admin := api{base: a, http: &http.Client{Timeout: 30 * time.Second}, token: s.token}
	outbound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"message_id": "out-" + r.Header.Get("Idempotency-Key")})
	}))
	t.Cleanup(outbound.Close)
	admin.must(t, "PUT", "/api/v1/admin/settings/OmniChatOperatorAcceptChatTimeout", map[string]string{"value": "5"}, nil)
	var q, u, ch struct{ ID string }
	var tok struct{ Token string }
	admin.must(t, "POST", "/api/v1/admin/queues", map[string]any{"name": "Replicas", "routing_rule": "available_agent"}, &q)
	admin.must(t, "POST", "/api/v1/admin/users", map[string]any{"name": "agent", "email": "agent@replicas.invalid"}, &u)
	admin.must(t, "POST", "/api/v1/admin/users/"+u.ID+"/tokens", map[string]any{"name": "replicas"}, &tok)
	admin.must(t, "POST", "/api/v1/admin/queues/"+q.ID+"/agents", map[string]any{"user_id": u.ID}, nil)
	admin.must(t, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "Replicas", "queue_id": q.ID,
		"secret": channelSecret, "settings": map[string]string{"outbound_url": outbound.URL + "/replies"}}, &ch)
	agent := api{base: a, http: &http.Client{Timeout: 30 * time.Second}, token: tok.Token}
	agent.must(t, "PUT", "/api/v1/agent/status", map[string]any{"status": "active"}, nil)

	onA := openEvents(t, "A", a, tok.Token, "")
	onB := openEvents(t, "B", b, tok.Token, "")

	// customer posts a signed webhook to A as a provider does (retrying
	// anything but 2xx) and returns when A answered 2xx.
	customer := func(msgID string) time.Time {
		t.Helper()
		body, _ := json.Marshal(apichannel.Inbound{ConversationID: "replicas-conv", MessageID: msgID,
			Sender: apichannel.Sender{ID: "cust-replicas", Name: "Customer"}, Text: "message " + msgID, Timestamp: time.Now().UTC()})
		var answered time.Time
		waitFor(t, 60*time.Second, "webhook "+msgID+" answered 2xx by A", func() error {
			req, _ := http.NewRequest("POST", a+"/webhooks/api/"+ch.ID, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(apichannel.SignatureHeader, apichannel.Sign(channelSecret, body))
			resp, err := admin.http.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("answered %d", resp.StatusCode)
			}
			answered = time.Now()
			return nil
		})
		return answered
	}
	// fanOut are the delays from the HTTP answer of a change that A commits
	// before answering to its event on B's stream.
	var fanOut []time.Duration
	var report []string
	note := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		report = append(report, line)
		t.Log(line)
	}

	// A customer's first message: a chat is created and offered to the agent.
	answered := customer("replicas-m1")
	offeredB := onB.next(t, 60*time.Second, "chat.offered", func(e sseEvent) bool { return e.typ == "chat.offered" })
	chat, _ := offeredB.data["chat_id"].(string)
	offeredA := onA.next(t, 30*time.Second, "chat.offered of "+chat, ofChat("chat.offered", chat))
	if offeredA.id != offeredB.id {
		t.Fatalf("chat.offered has id %s on A and %s on B: one log, one id", offeredA.id, offeredB.id)
	}
	note("webhook answered by A -> chat.offered on B: %s (through the worker's workflow and routing); on A: %s",
		offeredB.at.Sub(answered).Round(time.Millisecond), offeredA.at.Sub(answered).Round(time.Millisecond))

	// The agent accepts through A: committed before A answers.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := time.Now()
	if _, err := agent.do(ctx, "POST", "/api/v1/chats/"+chat+"/accept", nil, nil); err != nil {
		t.Fatal(err)
	}
	answered = time.Now()
	assignedB := onB.next(t, 30*time.Second, "chat.assigned of "+chat, ofChat("chat.assigned", chat))
	onA.next(t, 30*time.Second, "chat.assigned of "+chat, ofChat("chat.assigned", chat))
	fanOut = append(fanOut, assignedB.at.Sub(answered))
	note("accept: request to A -> chat.assigned on B %s; A's answer -> event on B %s (negative: the event came first)",
		assignedB.at.Sub(sent).Round(time.Microsecond), assignedB.at.Sub(answered).Round(time.Microsecond))

	// status changes the agent's status through A and waits for its event on
	// both streams it is given.
	status := func(to string, streams ...*sseStream) {
		t.Helper()
		sent := time.Now()
		agent.must(t, "PUT", "/api/v1/agent/status", map[string]any{"status": to}, nil)
		answered := time.Now()
		for _, st := range streams {
			e := st.next(t, 30*time.Second, "agent.status "+to, func(e sseEvent) bool { return e.typ == "agent.status" && e.data["status"] == to })
			if st == onB {
				fanOut = append(fanOut, e.at.Sub(answered))
				note("status %s: request to A -> agent.status on B %s; A's answer -> event on B %s", to,
					e.at.Sub(sent).Round(time.Microsecond), e.at.Sub(answered).Round(time.Microsecond))
			}
		}
	}
	status("inactive", onB, onA)
	status("active", onB, onA)

	// kill -9 of B: its stream breaks where it stood.
	serveB.kill()
	<-onB.done
	lastID := onB.LastID()
	if lastID == "" {
		t.Fatal("B's stream received no event ID")
	}

	// Meanwhile the customer writes again, through A.
	answered = customer("replicas-m2")
	missed := onA.next(t, 60*time.Second, "message.created in "+chat, func(e sseEvent) bool {
		return e.typ == "message.created" && e.data["chat_id"] == chat && e.data["direction"] == "inbound"
	})
	note("webhook answered by A -> message.created on A (B down): %s", missed.at.Sub(answered).Round(time.Millisecond))

	// B again; the stream resumes with the last event ID it received.
	serveB = bApp.start("serve")
	bApp.waitReady(serveB)
	opened := time.Now()
	onB = openEvents(t, "B (restarted)", b, tok.Token, lastID)
	got := onB.next(t, 30*time.Second, "the missed message.created", func(e sseEvent) bool { return e.typ == "message.created" })
	if got.id != missed.id || got.data["chat_id"] != chat || got.data["message_id"] != missed.data["message_id"] {
		t.Fatalf("B resumed after %s with %s %s %v, want the missed event %s %v", lastID, got.id, got.typ, got.data, missed.id, missed.data)
	}
	note("B restarted, stream resumed from %s -> missed message.created in %s after opening", lastID, got.at.Sub(opened).Round(time.Millisecond))

	// The restarted B listens too: the live tail follows.
	status("inactive", onB)
	status("active", onB)

	// Delivered by the wake-up, not by the poll: without LISTEN each change
	// made just after B's previous event would wait for B's next poll,
	// nearly the whole interval.
	sort.Slice(fanOut, func(i, j int) bool { return fanOut[i] < fanOut[j] })
	median := fanOut[len(fanOut)/2]
	note("A's answer to a change it committed -> event on B, %d samples: median %s, max %s (the streams' poll: %s)",
		len(fanOut), median.Round(time.Microsecond), fanOut[len(fanOut)-1].Round(time.Microsecond), streamPoll)
	if median >= streamPoll/2 {
		t.Errorf("median delay from a change on A to its event on B is %s, not well within the %s poll: B is not woken by NOTIFY", median, streamPoll)
	}
	for _, p := range []*proc{serveA, worker, serveB} {
		select {
		case <-p.exited:
			t.Errorf("omnichat %s exited during the test", p.name)
		default:
		}
	}
	note("whole test, the binary built beforehand: %s", time.Since(began).Round(100*time.Millisecond))
	fmt.Println("\n" + strings.Join(report, "\n"))
}
