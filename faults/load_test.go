package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/omnichat/omnichat/channels/apichannel"
)

const (
	channelSecret = "faults-channel-secret-0123456789"
	senders       = 8
	conversations = 40 // shared out among the senders, each conversation written by one
	agents        = 3
	// simultaneous is SimultaneousChats: the most chats one agent holds.
	simultaneous = 3
	// acceptTimeoutMinutes is the offer timeout (12 s): short enough that
	// offers made just before a fault expire during it.
	acceptTimeoutMinutes = 0.2
	// hangLimit is how long a provider waits for an answer before it
	// counts the call as failed: no call may take this long.
	hangLimit = 20 * time.Second
)

// api calls omnichat's API with a token.
type api struct {
	base  string
	http  *http.Client
	token string
}

func (a api) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

func (a api) must(t *testing.T, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.do(ctx, method, path, body, out); err != nil {
		t.Fatal(err)
	}
}

// world is what a scenario set up through the admin API.
type world struct {
	channel string
	queue   string
	agents  []api
}

// setup creates a queue with its agents (Active), the API channel, and short
// timers, through the admin API as an administrator would.
func setup(t *testing.T, s *stack) world {
	t.Helper()
	admin := api{base: "http://" + s.app.addr, http: &http.Client{Timeout: 30 * time.Second}, token: s.token}
	outbound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Like a provider, one ID per message, the same for its retries.
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"message_id": "out-" + r.Header.Get("Idempotency-Key")})
	}))
	t.Cleanup(outbound.Close)
	admin.must(t, "PUT", "/api/v1/admin/settings/SimultaneousChats", map[string]string{"value": strconv.Itoa(simultaneous)}, nil)
	admin.must(t, "PUT", "/api/v1/admin/settings/OmniChatOperatorAcceptChatTimeout", map[string]string{"value": strconv.FormatFloat(acceptTimeoutMinutes, 'f', -1, 64)}, nil)
	var q struct{ ID string }
	admin.must(t, "POST", "/api/v1/admin/queues", map[string]any{"name": "Faults", "routing_rule": "available_agent", "completion_timeout_minutes": 0.05}, &q)
	w := world{queue: q.ID}
	for i := 0; i < agents; i++ {
		var u struct{ ID string }
		name := fmt.Sprintf("agent%d", i)
		admin.must(t, "POST", "/api/v1/admin/users", map[string]any{"name": name, "email": name + "@faults.invalid"}, &u)
		var tok struct{ Token string }
		admin.must(t, "POST", "/api/v1/admin/users/"+u.ID+"/tokens", map[string]any{"name": "faults"}, &tok)
		admin.must(t, "POST", "/api/v1/admin/queues/"+q.ID+"/agents", map[string]any{"user_id": u.ID}, nil)
		ag := api{base: admin.base, http: &http.Client{Timeout: 30 * time.Second}, token: tok.Token}
		ag.must(t, "PUT", "/api/v1/agent/status", map[string]any{"status": "active"}, nil)
		w.agents = append(w.agents, ag)
	}
	var ch struct{ ID string }
	admin.must(t, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "Faults", "queue_id": q.ID,
		"secret": channelSecret, "settings": map[string]string{"outbound_url": outbound.URL + "/replies"}}, &ch)
	w.channel = ch.ID
	return w
}

// call is one webhook call as the provider saw it.
type call struct {
	at     time.Time
	took   time.Duration
	status int    // 0 when there was no HTTP answer
	err    string // refused, reset, timeout, ... when there was none
}

func (c call) outcome() string {
	if c.status != 0 {
		return strconv.Itoa(c.status)
	}
	return c.err
}

// message is one customer message and whether omnichat acknowledged it.
type message struct {
	id, conv string
	acked    bool
	ackedAt  time.Time
}

// load is the provider side: senders that post signed webhooks and retry
// anything but 2xx, as a messenger would.
type load struct {
	url   string
	http  *http.Client
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	calls []call
	msgs  []*message
	run   string
}

func newLoad(s *stack, w world, run string) *load {
	return &load{
		url: "http://" + s.app.addr + "/webhooks/api/" + w.channel,
		// A provider gives up on a call after a while; past hangLimit is
		// counted as a hang.
		http: &http.Client{Timeout: hangLimit + 10*time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders * 2}},
		stop: make(chan struct{}),
		run:  run,
	}
}

// start runs the senders until Stop; each keeps retrying its current message
// for up to giveUp, then goes on to the next.
func (l *load) start() {
	for s := 0; s < senders; s++ {
		l.wg.Add(1)
		go func(s int) {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				conv := fmt.Sprintf("%s-conv-%02d", l.run, s+senders*(i%(conversations/senders)))
				m := &message{id: fmt.Sprintf("%s-s%d-m%05d", l.run, s, i), conv: conv}
				l.mu.Lock()
				l.msgs = append(l.msgs, m)
				l.mu.Unlock()
				l.deliver(m)
				time.Sleep(100 * time.Millisecond)
			}
		}(s)
	}
}

const giveUp = 2 * time.Minute

// deliver posts one message until it is acknowledged or giveUp passes.
func (l *load) deliver(m *message) {
	body, _ := json.Marshal(apichannel.Inbound{ConversationID: m.conv, MessageID: m.id,
		Sender: apichannel.Sender{ID: "cust-" + m.conv, Name: "Customer " + m.conv}, Text: "message " + m.id, Timestamp: time.Now().UTC()})
	sig := apichannel.Sign(channelSecret, body)
	deadline := time.Now().Add(giveUp)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("POST", l.url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(apichannel.SignatureHeader, sig)
		c := call{at: time.Now()}
		resp, err := l.http.Do(req)
		c.took = time.Since(c.at)
		wait := 500 * time.Millisecond
		if err != nil {
			c.err = classify(err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.status = resp.StatusCode
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s <= 5 {
				wait = time.Duration(s) * time.Second
			}
		}
		l.mu.Lock()
		l.calls = append(l.calls, c)
		if c.status >= 200 && c.status < 300 {
			m.acked, m.ackedAt = true, time.Now()
		}
		l.mu.Unlock()
		if m.acked {
			return
		}
		time.Sleep(wait)
	}
}

// Stop stops sending new messages and waits for the ones being retried.
func (l *load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "error: " + err.Error()
}

// snapshot copies what the senders recorded so far.
func (l *load) snapshot() ([]call, []message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := append([]call(nil), l.calls...)
	msgs := make([]message, len(l.msgs))
	for i, m := range l.msgs {
		msgs[i] = *m
	}
	return calls, msgs
}

// desk is the agents at work: they accept every chat offered to them and
// answer it. While the customers write, they close each chat a moment later,
// so chats keep being created, routed and closed through the faults. Once
// the customers are done (Finish), they stop closing and answer every chat
// they hold once more, which arms its completion timer: from then on only
// the timers close chats. An agent set inactive by an expired offer goes
// active again, as a person at the desk would.
type desk struct {
	done      chan struct{}
	wg        sync.WaitGroup
	finishing atomic.Bool
	once      sync.Once
	agents    int
	// acks: each agent, on seeing Finish, has no close in flight any more.
	acks chan struct{}
	mu   sync.Mutex
	// tried are the chats an agent asked to close.
	tried map[string]bool
}

// CloseTried lists the chats an agent asked to close.
func (d *desk) CloseTried() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.tried))
	for id := range d.tried {
		out = append(out, id)
	}
	return out
}

func agentsAtWork(w world) *desk {
	d := &desk{done: make(chan struct{}), agents: len(w.agents), acks: make(chan struct{}, len(w.agents)), tried: map[string]bool{}}
	for _, ag := range w.agents {
		d.wg.Add(1)
		go d.work(ag)
	}
	return d
}

// Finish: from now on chats are only answered, never closed by the agents.
// It returns once no agent has a close in flight.
func (d *desk) Finish() {
	d.finishing.Store(true)
	for i := 0; i < d.agents; i++ {
		select {
		case <-d.acks:
		case <-time.After(time.Minute):
			return
		}
	}
}

// Stop sends the agents home; it may be called more than once.
func (d *desk) Stop() {
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
}

func (d *desk) work(ag api) {
	defer d.wg.Done()
	held := map[string]time.Time{}
	answered := map[string]bool{} // answered after the customers were done
	acked := false
	for {
		select {
		case <-d.done:
			return
		case <-time.After(300 * time.Millisecond):
		}
		finishing := d.finishing.Load()
		if finishing && !acked {
			acked = true
			d.acks <- struct{}{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var st struct{ Status string }
		if _, err := ag.do(ctx, "GET", "/api/v1/agent/status", nil, &st); err == nil && st.Status == "inactive" {
			_, _ = ag.do(ctx, "PUT", "/api/v1/agent/status", map[string]any{"status": "active"}, nil)
		}
		var page struct {
			Items []struct{ ID, Status string }
		}
		if _, err := ag.do(ctx, "GET", "/api/v1/chats?limit=100&status=offered", nil, &page); err == nil {
			for _, c := range page.Items {
				if _, err := ag.do(ctx, "POST", "/api/v1/chats/"+c.ID+"/accept", nil, nil); err == nil {
					held[c.ID] = time.Now()
					_, err := ag.do(ctx, "POST", "/api/v1/chats/"+c.ID+"/messages", map[string]any{"text": "hello, how can I help?"}, nil)
					answered[c.ID] = finishing && err == nil
				}
			}
		}
		// A chat accepted by a call whose answer was lost (the API killed
		// meanwhile) is in the agent's list all the same.
		if _, err := ag.do(ctx, "GET", "/api/v1/chats?limit=100&status=in_progress", nil, &page); err == nil {
			for _, c := range page.Items {
				if _, ok := held[c.ID]; !ok {
					held[c.ID] = time.Now()
				}
			}
		}
		for id, since := range held {
			switch {
			case finishing && !answered[id]:
				// Sent, or refused for good (closed by its timer meanwhile).
				if st, err := ag.do(ctx, "POST", "/api/v1/chats/"+id+"/messages", map[string]any{"text": "anything else?"}, nil); err == nil || (st >= 400 && st < 500) {
					answered[id] = true
				}
			case !finishing && time.Since(since) >= 2*time.Second:
				d.mu.Lock()
				d.tried[id] = true
				d.mu.Unlock()
				// Done, or refused for good (closed meanwhile, transferred): let it go.
				if st, err := ag.do(ctx, "POST", "/api/v1/chats/"+id+"/close", nil, nil); err == nil || (st >= 400 && st < 500) {
					delete(held, id)
				}
			}
		}
		cancel()
	}
}
