package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"

	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/config"
	"github.com/omnichat/omnichat/models"
)

type benchFlags struct {
	api, token                      string
	concurrency, convsPerSender     int
	agents                          int
	ingestFor, offerFor, offerDrain time.Duration
	rate                            float64
	visibleRate                     float64
	visibleFor, bulkFor, duration   time.Duration
	bulkSenders                     int
	phases                          string
}

// runBench drives a running stack through the API-channel webhook. It measures
// (1) the bare Temporal signal-with-start rate on the same server, the
// ceiling the others are compared with, (2) accepted and stored messages/s
// and webhook latency with many concurrent conversations, (3) acknowledgement
// to visible (message list and event stream) at a fixed message rate,
// (4) new-chat-to-offer latency at a fixed rate of new chats, and (5) chats
// opened and offered per second when every message opens a conversation.
func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "reads" || args[0] == "soak") {
		return map[string]func(context.Context, []string) error{"reads": runBenchReads, "soak": runBenchSoak}[args[0]](ctx, args[1:])
	}
	var f benchFlags
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&f.api, "api", "http://127.0.0.1:8080", "base URL of the running omnichat API")
	fs.StringVar(&f.token, "token", os.Getenv("OMNICHAT_BENCH_TOKEN"), "admin token (default $OMNICHAT_BENCH_TOKEN)")
	fs.IntVar(&f.concurrency, "concurrency", 32, "concurrent webhook senders (and signal-with-start callers for the ceiling)")
	fs.IntVar(&f.convsPerSender, "conversations", 4, "conversations each sender writes to, in turn (opened before the phase)")
	fs.IntVar(&f.agents, "agents", 10, "agents serving the bench queue")
	fs.DurationVar(&f.ingestFor, "ingest-for", 10*time.Second, "length of the ingest and ceiling phases")
	fs.Float64Var(&f.rate, "rate", 20, "new chats per second in the offer-latency phase")
	fs.DurationVar(&f.offerFor, "offer-for", 10*time.Second, "length of the offer-latency phase")
	fs.DurationVar(&f.offerDrain, "offer-wait", 30*time.Second, "how long to wait for the last offers")
	fs.Float64Var(&f.visibleRate, "visible-rate", 300, "messages per second to open chats in the visibility phase")
	fs.DurationVar(&f.visibleFor, "visible-for", 60*time.Second, "length of the visibility phase")
	fs.IntVar(&f.bulkSenders, "bulk-senders", 64, "senders in the bulk phase, every message a new conversation")
	fs.StringVar(&f.phases, "phases", "ceiling,ingest,visible,offers,bulk", "the phases to run, comma-separated (the ratios need ceiling)")
	fs.DurationVar(&f.bulkFor, "bulk-for", 10*time.Second, "length of the bulk phase")
	fs.DurationVar(&f.duration, "duration", 0, "when set, the length of every phase (for quick runs)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `omnichat bench: load-test a running stack (make run) through the API channel.
It creates a queue, agents and an API channel with the admin token, raises
SimultaneousChats for the run (restored at the end) and leaves the bench chats
behind. It reads OMNICHAT_DATABASE_URL and OMNICHAT_TEMPORAL_ADDRESS like the
service does.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.duration > 0 {
		f.ingestFor, f.offerFor, f.visibleFor, f.bulkFor = f.duration, f.duration, f.duration, f.duration
	}
	run := map[string]bool{}
	for _, p := range strings.Split(f.phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "ceiling", "ingest", "visible", "offers", "bulk":
			run[p] = true
		default:
			return fmt.Errorf("-phases: unknown phase %q (ceiling, ingest, visible, offers, bulk)", p)
		}
	}
	if f.token == "" {
		return fmt.Errorf("bench needs an admin token: -token or OMNICHAT_BENCH_TOKEN (bin/omnichat admin create -email ...)")
	}
	cfg, db, err := benchDatabase()
	if err != nil {
		return err
	}
	store := models.NewStore(db)
	tc, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: quietLogger{}})
	if err != nil {
		return fmt.Errorf("connect to Temporal: %w", err)
	}
	defer tc.Close()

	b := &bench{f: f, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: f.concurrency * 2}}}
	restore, err := b.setup(ctx)
	if err != nil {
		return err
	}
	defer restore()

	// The ceiling first, on an idle worker, so the chats' backlog cannot slow it.
	var ceiling phase
	if run["ceiling"] {
		fmt.Printf("ceiling: bare signal-with-start, %d callers for %s\n", f.concurrency, f.ingestFor)
		ceiling = b.ceiling(ctx, tc)
		fmt.Printf("  %d calls = %.1f calls/s; latency p50 %s, p99 %s\n", ceiling.ok, ceiling.rate, pct(ceiling.lat, 50), pct(ceiling.lat, 99))

	}

	if run["ingest"] {
		fmt.Printf("ingest: %d senders x %d conversations for %s\n", f.concurrency, f.convsPerSender, f.ingestFor)
		if _, _, err := b.openConversations(ctx, store, b.channel, "ingest", f.concurrency*f.convsPerSender); err != nil {
			return err
		}
		opened, err := b.storedNow(ctx, store)
		if err != nil {
			return err
		}
		began := time.Now()
		ingest := b.ingest(ctx)
		storedAtEnd, err := b.storedNow(ctx, store)
		if err != nil {
			return err
		}
		storedAtEnd -= opened
		fmt.Printf("  accepted %d messages (%d refused) = %.1f messages/s; webhook latency p50 %s, p99 %s\n",
			ingest.ok, ingest.failed, ingest.rate, pct(ingest.lat, 50), pct(ingest.lat, 99))
		if ceiling.rate > 0 {
			fmt.Printf("  accepted / ceiling = %.2f\n", ingest.rate/ceiling.rate)
		}
		fmt.Printf("  stored by the end of the phase %d = %.1f messages/s; backlog (acknowledged, not yet stored) %d\n",
			storedAtEnd, float64(storedAtEnd)/f.ingestFor.Seconds(), max(ingest.ok-storedAtEnd, 0))
		stored, took, err := b.drain(ctx, store, ingest.ok+opened, began)
		if err != nil {
			return err
		}
		fmt.Printf("  stored %d of them in PostgreSQL %s after the first was sent = %.1f messages/s end to end\n",
			stored-opened, took.Round(10*time.Millisecond), float64(stored-opened)/took.Seconds())

	}

	if run["visible"] {
		fmt.Printf("visible: %.0f messages/s to 64 open chats for %s\n", f.visibleRate, f.visibleFor)
		vis, err := b.visible(ctx, store)
		if err != nil {
			return err
		}
		fmt.Printf("  sent %d, accepted %d = %.1f messages/s; webhook p50 %s, p99 %s\n", vis.sent, vis.accepted, vis.rate, pct(vis.ack, 50), pct(vis.ack, 99))
		fmt.Printf("  acknowledgement -> in GET /chats/{id}/messages (%d sampled, %d never seen): p50 %s, p99 %s\n",
			vis.sampled, vis.missingGet, pct(vis.get, 50), pct(vis.get, 99))
		fmt.Printf("  acknowledgement -> on the event stream (%d seen, %d missing): p50 %s, p99 %s\n",
			len(vis.event), vis.missingEvent, pct(vis.event, 50), pct(vis.event, 99))

	}

	if run["offers"] {
		fmt.Printf("offers: %.0f new chats/s for %s\n", f.rate, f.offerFor)
		offers, missing, err := b.offerLatency(ctx, store)
		if err != nil {
			return err
		}
		fmt.Printf("  %d chats offered (%d not offered in time); new-chat-to-offer latency p50 %s, p99 %s\n",
			len(offers), missing, pct(offers, 50), pct(offers, 99))

	}

	if run["bulk"] {
		fmt.Printf("new-workflow ceiling: bare signal-with-start, each a new workflow, %d callers for %s\n", f.bulkSenders, f.bulkFor)
		fresh := b.ceilingNew(ctx, tc)
		fmt.Printf("  %d calls = %.1f calls/s; latency p50 %s, p99 %s\n", fresh.ok, fresh.rate, pct(fresh.lat, 50), pct(fresh.lat, 99))
		fmt.Printf("bulk: %d senders for %s, every message a new conversation\n", f.bulkSenders, f.bulkFor)
		bulk, err := b.bulk(ctx, store)
		if err != nil {
			return err
		}
		fmt.Printf("  accepted %d (%d refused) = %.1f new conversations/s; webhook p50 %s, p99 %s\n",
			bulk.accepted, bulk.failed, bulk.sendRate, pct(bulk.webhook, 50), pct(bulk.webhook, 99))
		fmt.Printf("  chats opened %d = %.1f/s, offered %d = %.1f/s\n", bulk.opened, bulk.openRate, bulk.offered, bulk.offerRate)
		if ceiling.rate > 0 {
			fmt.Printf("  offered / ceiling = %.2f (target 0.25)\n", bulk.offerRate/ceiling.rate)
		}
		if fresh.rate > 0 {
			fmt.Printf("  offered / new-workflow ceiling = %.2f\n", bulk.offerRate/fresh.rate)
		}
	}
	return nil
}

type bench struct {
	f         benchFlags
	http      *http.Client
	channel   string
	secret    string
	runID     string
	outbound  *http.Server
	prevLimit string
	// prevAccept is the accept timeout before the run: offers made while a
	// slow run goes on must not expire (an expiry makes its agent Inactive).
	prevAccept string
	// visChannel is a channel of an all_agents queue served by the agent
	// whose token (agentToken) reads messages and events in the visibility phase.
	visChannel, agentToken string
}

func (b *bench) call(ctx context.Context, method, path string, body any, out any) error {
	return b.callAs(ctx, b.f.token, method, path, body, out)
}

// callAs calls the API with a token.
func (b *bench) callAs(ctx context.Context, token, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.f.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// setup creates the bench queue, agents and channel and raises SimultaneousChats.
func (b *bench) setup(ctx context.Context) (func(), error) {
	b.runID = uuid.NewString()[:8]
	b.secret = "bench-secret-" + uuid.NewString()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.outbound = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })}
	go func() { _ = b.outbound.Serve(ln) }()

	var setting struct{ Value string }
	if err := b.call(ctx, "GET", "/api/v1/admin/settings/SimultaneousChats", nil, &setting); err != nil {
		return nil, err
	}
	b.prevLimit = setting.Value
	if err := b.call(ctx, "PUT", "/api/v1/admin/settings/SimultaneousChats", map[string]string{"value": "1000"}, nil); err != nil {
		return nil, err
	}
	if err := b.call(ctx, "GET", "/api/v1/admin/settings/OmniChatOperatorAcceptChatTimeout", nil, &setting); err != nil {
		return nil, err
	}
	b.prevAccept = setting.Value
	if err := b.call(ctx, "PUT", "/api/v1/admin/settings/OmniChatOperatorAcceptChatTimeout", map[string]string{"value": "600"}, nil); err != nil {
		return nil, err
	}
	restore := func() {
		_ = b.call(context.Background(), "PUT", "/api/v1/admin/settings/SimultaneousChats", map[string]string{"value": b.prevLimit}, nil)
		_ = b.call(context.Background(), "PUT", "/api/v1/admin/settings/OmniChatOperatorAcceptChatTimeout", map[string]string{"value": b.prevAccept}, nil)
		_ = b.outbound.Close()
	}
	var q, vq struct{ ID string }
	if err := b.call(ctx, "POST", "/api/v1/admin/queues", map[string]any{"name": "bench " + b.runID, "routing_rule": "available_agent"}, &q); err != nil {
		restore()
		return nil, err
	}
	if err := b.call(ctx, "POST", "/api/v1/admin/queues", map[string]any{"name": "bench " + b.runID + " visible", "routing_rule": "all_agents"}, &vq); err != nil {
		restore()
		return nil, err
	}
	for i := 0; i < b.f.agents; i++ {
		var u struct{ ID string }
		name := fmt.Sprintf("bench-%s-%02d", b.runID, i)
		err := b.call(ctx, "POST", "/api/v1/admin/users", map[string]any{"name": name, "email": name + "@bench.invalid"}, &u)
		if err == nil {
			err = b.call(ctx, "POST", "/api/v1/admin/queues/"+q.ID+"/agents", map[string]any{"user_id": u.ID}, nil)
		}
		if err == nil {
			err = b.call(ctx, "PATCH", "/api/v1/admin/users/"+u.ID, map[string]any{"status": "active"}, nil)
		}
		if err == nil && i == 0 {
			var tok struct{ Token string }
			err = b.call(ctx, "POST", "/api/v1/admin/queues/"+vq.ID+"/agents", map[string]any{"user_id": u.ID}, nil)
			if err == nil {
				err = b.call(ctx, "POST", "/api/v1/admin/users/"+u.ID+"/tokens", map[string]any{"name": "bench"}, &tok)
			}
			b.agentToken = tok.Token
		}
		if err != nil {
			restore()
			return nil, err
		}
	}
	var ch struct{ ID string }
	if err := b.call(ctx, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "bench " + b.runID, "queue_id": q.ID,
		"secret": b.secret, "settings": map[string]string{"outbound_url": "http://" + ln.Addr().String() + "/"}}, &ch); err != nil {
		restore()
		return nil, err
	}
	b.channel = ch.ID
	if err := b.call(ctx, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "bench " + b.runID + " visible", "queue_id": vq.ID,
		"secret": b.secret, "settings": map[string]string{"outbound_url": "http://" + ln.Addr().String() + "/"}}, &ch); err != nil {
		restore()
		return nil, err
	}
	b.visChannel = ch.ID
	return restore, nil
}

func (b *bench) post(ctx context.Context, conv, msgID string) (time.Duration, bool) {
	return b.postText(ctx, b.channel, conv, msgID, "bench message")
}

func (b *bench) postText(ctx context.Context, channel, conv, msgID, text string) (time.Duration, bool) {
	body, _ := json.Marshal(apichannel.Inbound{ConversationID: conv, MessageID: msgID, Sender: apichannel.Sender{ID: "c-" + conv, Name: "Bench " + conv},
		Text: text, Timestamp: time.Now().UTC()})
	req, _ := http.NewRequestWithContext(ctx, "POST", b.f.api+"/webhooks/api/"+channel, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(apichannel.SignatureHeader, apichannel.Sign(b.secret, body))
	start := time.Now()
	resp, err := b.http.Do(req)
	took := time.Since(start)
	if err != nil {
		return took, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return took, resp.StatusCode == http.StatusOK
}

type phase struct {
	ok, failed int64
	rate       float64
	lat        []time.Duration
}

// hammer runs fn from n goroutines for d and collects latencies of successes.
func hammer(ctx context.Context, n int, d time.Duration, fn func(ctx context.Context, worker, i int) (time.Duration, bool)) phase {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed atomic.Int64
	lats := make([][]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				took, good := fn(ctx, w, i)
				if ctx.Err() != nil && !good {
					return // cut off by the end of the phase
				}
				if good {
					ok.Add(1)
					lats[w] = append(lats[w], took)
				} else {
					failed.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	p := phase{ok: ok.Load(), failed: failed.Load()}
	p.rate = float64(p.ok) / time.Since(start).Seconds()
	for _, l := range lats {
		p.lat = append(p.lat, l...)
	}
	return p
}

func (b *bench) ingest(ctx context.Context) phase {
	return hammer(ctx, b.f.concurrency, b.f.ingestFor, func(ctx context.Context, w, i int) (time.Duration, bool) {
		conv := fmt.Sprintf("ingest-%s-%d", b.runID, w*b.f.convsPerSender+i%b.f.convsPerSender)
		return b.post(ctx, conv, fmt.Sprintf("%s-%d-%d", b.runID, w, i))
	})
}

func (b *bench) ceiling(ctx context.Context, tc client.Client) phase {
	// Same pattern as the ingest: each caller rotates over its conversations.
	return b.signalWithStart(ctx, tc, b.f.concurrency, b.f.ingestFor, func(w, i int) string {
		return fmt.Sprintf("bench-ceiling/%s/%d/%d", b.runID, w, i%b.f.convsPerSender)
	})
}

// ceilingNew is the bare signal-with-start rate when every call starts a new
// workflow, as a new conversation does (nothing runs the workflows).
func (b *bench) ceilingNew(ctx context.Context, tc client.Client) phase {
	return b.signalWithStart(ctx, tc, b.f.bulkSenders, b.f.bulkFor, func(w, i int) string {
		return fmt.Sprintf("bench-ceiling-new/%s/%d/%d", b.runID, w, i)
	})
}

// signalWithStart times bare signal-with-start calls to the workflow IDs
// that id names for caller w's i-th call.
func (b *bench) signalWithStart(ctx context.Context, tc client.Client, callers int, d time.Duration, id func(w, i int) string) phase {
	return hammer(ctx, callers, d, func(ctx context.Context, w, i int) (time.Duration, bool) {
		wf := id(w, i)
		start := time.Now()
		_, err := tc.SignalWithStartWorkflow(ctx, wf, "inbound", "x", client.StartWorkflowOptions{
			ID: wf, TaskQueue: "omnichat-bench-ceiling", WorkflowRunTimeout: time.Minute,
		}, "BenchNoop")
		return time.Since(start), err == nil
	})
}

// drain waits until the chats' workflows have stored every accepted message,
// then until routing has offered every bench chat, so the offer phase measures
// a system that is not still working off the ingest.
func (b *bench) drain(ctx context.Context, store *models.Store, want int64, began time.Time) (int64, time.Duration, error) {
	deadline := time.Now().Add(5 * time.Minute)
	var n int64
	var took time.Duration
	for {
		if err := store.Raw(ctx, &n, `SELECT count(*) FROM messages WHERE channel_id = ? AND direction = 'inbound'`, b.channel); err != nil {
			return 0, 0, err
		}
		if n >= want || time.Now().After(deadline) {
			took = time.Since(began)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		var waiting int64
		if err := store.Raw(ctx, &waiting, `SELECT count(*) FROM chats WHERE channel_id = ? AND status = 'waiting'`, b.channel); err != nil {
			return 0, 0, err
		}
		if waiting == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n, took, nil
}

// offerLatency opens new chats at a fixed rate and measures, per chat, the time
// from sending its first message to the offer recorded in PostgreSQL.
func (b *bench) offerLatency(ctx context.Context, store *models.Store) ([]time.Duration, int, error) {
	sent := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / b.f.rate)
	n := int(b.f.offerFor.Seconds() * b.f.rate)
	tick := time.NewTicker(interval)
	for i := 0; i < n; i++ {
		<-tick.C
		conv := fmt.Sprintf("offer-%s-%d-%d", b.runID, i, rand.IntN(1000))
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if _, ok := b.post(ctx, conv, conv+"-1"); ok {
				mu.Lock()
				sent[conv] = start
				mu.Unlock()
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	var rows []struct {
		ConversationID string
		OfferedAt      *time.Time
	}
	deadline := time.Now().Add(b.f.offerDrain)
	for {
		rows = nil
		if err := store.Raw(ctx, &rows, `SELECT conversation_id, offered_at FROM chats WHERE channel_id = ? AND conversation_id LIKE ? AND offered_at IS NOT NULL`,
			b.channel, "offer-"+b.runID+"-%"); err != nil {
			return nil, 0, err
		}
		if len(rows) >= len(sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lat []time.Duration
	for _, r := range rows {
		if start, ok := sent[r.ConversationID]; ok {
			lat = append(lat, r.OfferedAt.Sub(start))
		}
	}
	return lat, len(sent) - len(lat), nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return s[i].Round(100 * time.Microsecond)
}

// quietLogger keeps the Temporal client's own logs out of the bench's figures.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

// benchDatabase loads the configuration and opens the database every bench
// mode reads or seeds directly.
func benchDatabase() (config.Config, *gorm.DB, error) {
	cfg, err := config.Load()
	if err != nil {
		return cfg, nil, err
	}
	db, err := models.Open(cfg.DatabaseURL)
	return cfg, db, err
}
