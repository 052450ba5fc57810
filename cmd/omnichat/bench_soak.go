package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/models"
)

type soakFlags struct {
	api, token                 string
	chats, concurrency, agents int
	openFor, acceptTimeout     time.Duration
	completion, settle, sample time.Duration
	waitFor                    time.Duration
	acceptEvery                int
	workerPID                  int
	rate                       float64
}

// runBenchSoak opens many chats on one worker and keeps them open with their
// timers armed: every chat is offered to an agent (accept timer), and every
// acceptEvery-th offered chat is accepted and answered by its agent
// (completion timer). It prints the time to open them, the worker's resident
// memory over time, and how late the timers fired.
func runBenchSoak(ctx context.Context, args []string) error {
	var f soakFlags
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.StringVar(&f.api, "api", "http://127.0.0.1:8080", "base URL of the running omnichat API")
	fs.StringVar(&f.token, "token", os.Getenv("OMNICHAT_BENCH_TOKEN"), "admin token (default $OMNICHAT_BENCH_TOKEN)")
	fs.IntVar(&f.chats, "chats", 100_000, "open chats to reach")
	fs.DurationVar(&f.openFor, "open-for", 15*time.Minute, "stop opening chats after this long even if -chats is not reached")
	fs.IntVar(&f.concurrency, "concurrency", 32, "concurrent webhook senders")
	fs.Float64Var(&f.rate, "rate", 0, "new chats per second at most (0: as fast as the senders go)")
	fs.IntVar(&f.agents, "agents", 110, "agents the chats are offered to (SimultaneousChats is raised to fit, at most 1000, and restored at the end)")
	fs.DurationVar(&f.acceptTimeout, "accept-timeout", 20*time.Minute, "accept timeout for the run (OmniChatOperatorAcceptChatTimeout, restored at the end)")
	fs.DurationVar(&f.completion, "completion", 10*time.Minute, "completion timeout of the bench queue")
	fs.IntVar(&f.acceptEvery, "accept-every", 10, "accept and answer every n-th offered chat, which arms its completion timer")
	fs.DurationVar(&f.settle, "settle", 2*time.Minute, "how long after the last deadline to wait for timers still due")
	fs.DurationVar(&f.sample, "sample", 5*time.Second, "RSS sampling interval")
	fs.DurationVar(&f.waitFor, "wait-for", 0, "after the opening, wait at most this long for timers, then report (0: until -settle after the last deadline, or earlier once past it no chat is offered or in progress); timers not yet due are left out, overdue ones are counted")
	fs.IntVar(&f.workerPID, "worker-pid", 0, "PID of the running worker to watch; 0 starts \"omnichat worker\" with this environment")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `omnichat bench soak: open many chats on one worker process, with their
accept and completion timers armed to fire inside the run, and print the time
to open them, the worker's RSS (VmRSS) over time and the timers' lateness.
Needs a running API (omnichat serve); the worker is started by the bench, as a
separate process, unless -worker-pid names one. Timers fire once the opening
ends plus the timeouts, so the run lasts about -open-for + -accept-timeout + -settle,
or -open-for + -wait-for when that is shorter: with an accept timeout a little
longer than the opening, the timers fire while every chat is open.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.token == "" {
		return fmt.Errorf("bench soak needs an admin token: -token or OMNICHAT_BENCH_TOKEN")
	}
	if f.chats < 1 || f.agents < 1 || f.concurrency < 1 || f.acceptEvery < 1 {
		return fmt.Errorf("bench soak: -chats, -agents, -concurrency and -accept-every must be positive")
	}
	cfg, db, err := benchDatabase()
	if err != nil {
		return err
	}
	store := models.NewStore(db)

	pid := f.workerPID
	if pid == 0 {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		worker := exec.Command(self, "worker")
		worker.Env = os.Environ()
		logf, err := os.CreateTemp("", "omnichat-soak-worker-*.log")
		if err != nil {
			return err
		}
		worker.Stdout, worker.Stderr = logf, logf
		if err := worker.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		pid = worker.Process.Pid
		fmt.Printf("worker: started `%s worker`, pid %d, log %s (sticky cache %d workflows)\n", self, pid, logf.Name(), cfg.StickyCacheSize)
		defer func() {
			_ = worker.Process.Signal(os.Interrupt)
			_, _ = worker.Process.Wait()
			logf.Close()
		}()
	}
	if _, err := readRSS(pid); err != nil {
		return fmt.Errorf("worker pid %d: %w", pid, err)
	}

	s := &soak{f: f, store: store, pid: pid, b: &bench{f: benchFlags{api: f.api, token: f.token},
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: f.concurrency * 2}}}}
	restore, err := s.setup(ctx)
	if err != nil {
		return err
	}
	defer restore()

	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); s.sampleRSS(sampleCtx) }()

	fmt.Printf("open: up to %d chats, %d senders, for at most %s; accept timeout %s, completion %s, every %d-th offer accepted\n",
		f.chats, f.concurrency, f.openFor, f.acceptTimeout, f.completion, f.acceptEvery)
	acceptCtx, stopAccepting := context.WithCancel(ctx)
	defer stopAccepting()
	var accepting sync.WaitGroup
	accepting.Add(1)
	go func() { defer accepting.Done(); s.acceptLoop(acceptCtx) }()
	began := time.Now()
	opened := s.open(ctx)
	took := time.Since(began)
	fmt.Printf("  %d chats opened (webhook 200) in %s = %.1f chats/s (%d refused)\n", opened, took.Round(100*time.Millisecond),
		float64(opened)/took.Seconds(), s.refused.Load())
	s.reached.Store(time.Since(s.start).Nanoseconds())

	// Every timer is due by the last offer plus the accept timeout (accepted
	// chats close by their completion timeout, shorter or not).
	last := time.Now().Add(f.acceptTimeout)
	if f.completion > f.acceptTimeout {
		last = time.Now().Add(f.completion)
	}
	until := last.Add(f.settle)
	if f.waitFor > 0 && time.Now().Add(f.waitFor).Before(until) {
		until = time.Now().Add(f.waitFor)
	}
	fmt.Printf("wait: for the timers, until every chat's timer has fired or %s\n", until.UTC().Format(time.TimeOnly))
	for time.Now().Before(until) && ctx.Err() == nil {
		time.Sleep(5 * time.Second)
		var due int64
		if err := store.Raw(ctx, &due, `SELECT count(*) FROM chats WHERE channel_id = ? AND status IN ('offered', 'in_progress')`, s.channel); err != nil {
			return err
		}
		if due == 0 && time.Now().After(last) {
			break
		}
	}
	stopAccepting()
	accepting.Wait()
	stopSampling()
	sampling.Wait()
	return s.report(ctx)
}

type soak struct {
	f       soakFlags
	b       *bench
	store   *models.Store
	pid     int
	runID   string
	channel string
	tokens  map[uuid.UUID]string
	start   time.Time
	sent    atomic.Int64
	refused atomic.Int64
	reached atomic.Int64 // ns after start when opening ended; 0 while opening
	mu      sync.Mutex
	samples []rssSample
	acted   atomic.Int64
}

type rssSample struct {
	at       time.Duration
	rss      int64 // KiB
	opened   int64
	open     int64
	accepted int64
}

// setup creates the queue, channel and agents (each with a token), and
// raises SimultaneousChats and the accept timeout for the run.
func (s *soak) setup(ctx context.Context) (func(), error) {
	s.runID = uuid.NewString()[:8]
	s.start = time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	outbound := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })}
	go func() { _ = outbound.Serve(ln) }()
	prev := map[string]string{}
	restore := func() {
		for code, v := range prev {
			_ = s.b.call(context.Background(), "PUT", "/api/v1/admin/settings/"+code, map[string]string{"value": v}, nil)
		}
		_ = outbound.Close()
	}
	// SimultaneousChats goes up to 1000: with fewer than chats/1000 agents the
	// rest of the chats wait without an offer (and without an accept timer).
	limit := min((s.f.chats+s.f.agents-1)/s.f.agents+10, 1000)
	if s.f.agents*limit < s.f.chats {
		fmt.Printf("  note: %d agents x %d chats each offer only %d of %d chats\n", s.f.agents, limit, s.f.agents*limit, s.f.chats)
	}
	for code, v := range map[string]string{"SimultaneousChats": strconv.Itoa(limit),
		"OmniChatOperatorAcceptChatTimeout": strconv.FormatFloat(s.f.acceptTimeout.Minutes(), 'f', -1, 64)} {
		var setting struct{ Value string }
		if err := s.b.call(ctx, "GET", "/api/v1/admin/settings/"+code, nil, &setting); err != nil {
			restore()
			return nil, err
		}
		if err := s.b.call(ctx, "PUT", "/api/v1/admin/settings/"+code, map[string]string{"value": v}, nil); err != nil {
			restore()
			return nil, err
		}
		prev[code] = setting.Value
	}
	var q struct{ ID string }
	if err := s.b.call(ctx, "POST", "/api/v1/admin/queues", map[string]any{"name": "bench soak " + s.runID, "routing_rule": "available_agent",
		"completion_timeout_minutes": s.f.completion.Minutes()}, &q); err != nil {
		restore()
		return nil, err
	}
	s.tokens = map[uuid.UUID]string{}
	for i := 0; i < s.f.agents; i++ {
		var u struct{ ID uuid.UUID }
		var tok struct{ Token string }
		name := fmt.Sprintf("bench-soak-%s-%02d", s.runID, i)
		err := s.b.call(ctx, "POST", "/api/v1/admin/users", map[string]any{"name": name, "email": name + "@bench.invalid"}, &u)
		if err == nil {
			err = s.b.call(ctx, "POST", "/api/v1/admin/queues/"+q.ID+"/agents", map[string]any{"user_id": u.ID}, nil)
		}
		if err == nil {
			err = s.b.call(ctx, "POST", "/api/v1/admin/users/"+u.ID.String()+"/tokens", map[string]any{"name": "bench soak"}, &tok)
		}
		if err == nil {
			err = s.b.call(ctx, "PATCH", "/api/v1/admin/users/"+u.ID.String(), map[string]any{"status": "active"}, nil)
		}
		if err != nil {
			restore()
			return nil, err
		}
		s.tokens[u.ID] = tok.Token
	}
	var ch struct{ ID string }
	s.b.secret = "bench-soak-" + uuid.NewString()
	if err := s.b.call(ctx, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "bench soak " + s.runID, "queue_id": q.ID,
		"secret": s.b.secret, "settings": map[string]string{"outbound_url": "http://" + ln.Addr().String() + "/"}}, &ch); err != nil {
		restore()
		return nil, err
	}
	s.channel, s.b.channel = ch.ID, ch.ID
	return restore, nil
}

// open sends the first message of a new conversation per chat until
// -chats are open or -open-for has passed.
func (s *soak) open(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, s.f.openFor)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var pace <-chan time.Time
	if s.f.rate > 0 {
		tick := time.NewTicker(time.Duration(float64(time.Second) / s.f.rate))
		defer tick.Stop()
		pace = tick.C
	}
	for w := 0; w < s.f.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if pace != nil {
					select {
					case <-ctx.Done():
						return
					case <-pace:
					}
				}
				i := next.Add(1)
				if i > int64(s.f.chats) {
					return
				}
				conv := fmt.Sprintf("soak-%s-%d", s.runID, i)
				for ctx.Err() == nil {
					if _, ok := s.b.post(ctx, conv, conv+"-1"); ok {
						s.sent.Add(1)
						break
					}
					s.refused.Add(1)
					time.Sleep(100 * time.Millisecond) // a refusal (overload) is retried: the same message, idempotent
				}
			}
		}()
	}
	wg.Wait()
	return s.sent.Load()
}

// acceptLoop accepts every acceptEvery-th chat offered (by seq) as its agent
// and answers it, so the chat runs its completion timer from that reply.
func (s *soak) acceptLoop(ctx context.Context) {
	var after int64
	for ctx.Err() == nil {
		// An agent whose offer expired becomes inactive; the bench brings it
		// back, so later chats are offered too and keep an accept timer.
		var idle []uuid.UUID
		if err := s.store.Raw(ctx, &idle, `SELECT id FROM users WHERE email LIKE ? AND status = 'inactive'`, "bench-soak-"+s.runID+"-%"); err != nil {
			return
		}
		for _, id := range idle {
			_ = s.b.call(ctx, "PATCH", "/api/v1/admin/users/"+id.String(), map[string]any{"status": "active"}, nil)
		}
		var rows []struct {
			ID      uuid.UUID
			Seq     int64
			AgentID uuid.UUID
		}
		if err := s.store.Raw(ctx, &rows, `SELECT id, seq, agent_id FROM chats WHERE channel_id = ? AND status = 'offered' AND seq > ?
			AND seq % ? = 0 ORDER BY seq LIMIT 200`, s.channel, after, s.f.acceptEvery); err != nil {
			return
		}
		if len(rows) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			continue
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, r := range rows {
			after = r.Seq
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ab := &bench{f: benchFlags{api: s.f.api, token: s.tokens[r.AgentID]}, http: s.b.http}
				if err := ab.call(ctx, "POST", "/api/v1/chats/"+r.ID.String()+"/accept", nil, nil); err != nil {
					return
				}
				if err := ab.call(ctx, "POST", "/api/v1/chats/"+r.ID.String()+"/messages", map[string]string{"text": "bench reply"}, nil); err == nil {
					s.acted.Add(1)
				}
			}()
		}
		wg.Wait()
	}
}

// sampleRSS reads the worker's VmRSS and the open chats every -sample and
// prints a line every sixth sample.
func (s *soak) sampleRSS(ctx context.Context) {
	tick := time.NewTicker(s.f.sample)
	defer tick.Stop()
	fmt.Println("  time     opened   open now  accepted  worker RSS")
	for n := 0; ; n++ {
		rss, err := readRSS(s.pid)
		if err != nil {
			fmt.Println("  worker gone:", err)
			return
		}
		var open int64
		_ = s.store.Raw(ctx, &open, `SELECT count(*) FROM chats WHERE channel_id = ? AND status <> 'closed'`, s.channel)
		smp := rssSample{at: time.Since(s.start), rss: rss, opened: s.sent.Load(), open: open, accepted: s.acted.Load()}
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
		if n%6 == 0 {
			fmt.Printf("  %-8s %-8d %-9d %-9d %d MiB\n", smp.at.Round(time.Second), smp.opened, smp.open, smp.accepted, smp.rss/1024)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// report prints the RSS summary and the timers' lateness: an accept timer's
// deadline is its offer's time plus the accept timeout, fired when the offer
// expired; a completion timer's deadline is the agent's reply being recorded
// plus the completion timeout, fired when the chat closed. Times come from the
// event log (each event is stamped with its transaction's start) and the
// chat row. The offer and the sent reply are recorded a moment before the
// workflow takes its deadline from them, so the lateness is, if anything,
// overstated by that moment.
func (s *soak) report(ctx context.Context) error {
	s.mu.Lock()
	var maxRSS, lastRSS int64
	var peakOpen int64
	for _, smp := range s.samples {
		maxRSS = max(maxRSS, smp.rss)
		peakOpen = max(peakOpen, smp.open)
		lastRSS = smp.rss
	}
	n := len(s.samples)
	s.mu.Unlock()
	fmt.Printf("worker RSS: max %d MiB, at the end %d MiB (%d samples); at most %d chats open at once\n", maxRSS/1024, lastRSS/1024, n, peakOpen)

	// One pass over the run's events (the event log has no index by chat, and
	// needs none elsewhere): each expiry paired with the offer before it. An
	// expiry writes two events (to the agent and to the chat's watchers), so
	// only the first after an offer counts.
	var rows []struct{ Late float64 }
	if err := s.store.Raw(ctx, &rows, `WITH e AS (
			SELECT e.chat_id, e.txid, e.id, e.created_at, e.data->>'reason' AS reason FROM events e JOIN chats c ON c.id = e.chat_id
			WHERE c.channel_id = @channel AND e.type LIKE 'chat.%' AND e.data->>'reason' IN ('routed', 'expired')),
		p AS (SELECT reason, created_at, lag(reason) OVER w AS prev_reason, lag(created_at) OVER w AS prev_at
			FROM e WINDOW w AS (PARTITION BY chat_id ORDER BY txid, id))
		SELECT extract(epoch FROM created_at - (prev_at + make_interval(secs => @accept))) AS late
		FROM p WHERE reason = 'expired' AND prev_reason = 'routed'`,
		map[string]any{"channel": s.channel, "accept": s.f.acceptTimeout.Seconds()}); err != nil {
		return err
	}
	var acceptLate []time.Duration
	for _, r := range rows {
		acceptLate = append(acceptLate, time.Duration(r.Late*float64(time.Second)))
	}
	rows = nil
	if err := s.store.Raw(ctx, &rows, `WITH r AS (SELECT e.chat_id, max(e.created_at) AS at FROM events e JOIN chats c ON c.id = e.chat_id
			WHERE c.channel_id = @channel AND e.type = 'message.created' AND e.data->>'direction' = 'outbound' GROUP BY e.chat_id)
		SELECT extract(epoch FROM c.closed_at - (r.at + make_interval(secs => @completion))) AS late
		FROM chats c JOIN r ON r.chat_id = c.id WHERE c.close_reason = 'timeout'`,
		map[string]any{"channel": s.channel, "completion": s.f.completion.Seconds()}); err != nil {
		return err
	}
	var completionLate []time.Duration
	for _, r := range rows {
		completionLate = append(completionLate, time.Duration(r.Late*float64(time.Second)))
	}
	// Timers due more than a second ago that have not fired are failures, not
	// lateness the figures above could show: counted apart.
	var left struct{ Offered, OfferOverdue, InProgress, CompletionOverdue, Waiting int64 }
	if err := s.store.Raw(ctx, &left, `WITH r AS (SELECT e.chat_id, max(e.created_at) AS at FROM events e JOIN chats c ON c.id = e.chat_id
			WHERE c.channel_id = @channel AND e.type = 'message.created' AND e.data->>'direction' = 'outbound' GROUP BY e.chat_id)
		SELECT count(*) FILTER (WHERE status = 'offered') AS offered,
		count(*) FILTER (WHERE status = 'offered' AND offered_at + make_interval(secs => @accept) < now() - interval '1 second') AS offer_overdue,
		count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
		count(*) FILTER (WHERE status = 'in_progress' AND r.at + make_interval(secs => @completion) < now() - interval '1 second') AS completion_overdue,
		count(*) FILTER (WHERE status = 'waiting') AS waiting
		FROM chats c LEFT JOIN r ON r.chat_id = c.id WHERE c.channel_id = @channel`,
		map[string]any{"accept": s.f.acceptTimeout.Seconds(), "completion": s.f.completion.Seconds(), "channel": s.channel}); err != nil {
		return err
	}
	fmt.Printf("accept timers: %d fired, late by p50 %s, p99 %s, max %s\n", len(acceptLate), pct(acceptLate, 50), pct(acceptLate, 99), pct(acceptLate, 100))
	fmt.Printf("completion timers: %d fired (of %d chats answered), late by p50 %s, p99 %s, max %s\n", len(completionLate), s.acted.Load(),
		pct(completionLate, 50), pct(completionLate, 99), pct(completionLate, 100))
	fmt.Printf("at the end: %d chats offered (%d past their accept deadline by over 1 s), %d in progress (%d past their completion deadline by over 1 s), %d waiting (no timer)\n",
		left.Offered, left.OfferOverdue, left.InProgress, left.CompletionOverdue, left.Waiting)
	return nil
}

// readRSS reads VmRSS (KiB) of a process from /proc.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
