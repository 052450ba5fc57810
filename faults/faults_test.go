package faults

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/omnichat/omnichat/models"
)

// scenario is one fault, injected while the load runs.
type scenario struct {
	name string
	// split runs `serve` and `worker` as two processes instead of `all`.
	split bool
	// noAnswerOK: the process answering webhooks is down during the fault,
	// so calls may find no one listening (refused, reset) then.
	noAnswerOK bool
	// inject runs the fault and returns when the last thing it took away is
	// being given back (restart issued).
	inject func(r *scenarioRun) (end time.Time)
}

// scenarioRun is a scenario's processes while it runs.
type scenarioRun struct {
	t                    *testing.T
	s                    *stack
	all, serve, worker   *proc
	faultStart, faultEnd time.Time
}

func (r *scenarioRun) api() *proc {
	if r.all != nil {
		return r.all
	}
	return r.serve
}

var scenarios = []scenario{
	{name: "kill -9 `all`, restart after 2 s", noAnswerOK: true, inject: func(r *scenarioRun) time.Time {
		r.all.kill()
		time.Sleep(2 * time.Second)
		end := time.Now()
		r.all = r.s.app.start("all")
		return end
	}},
	{name: "`worker` killed (-9) for 20 s", split: true, inject: func(r *scenarioRun) time.Time {
		r.worker.kill()
		time.Sleep(20 * time.Second)
		end := time.Now()
		r.worker = r.s.app.start("worker")
		return end
	}},
	{name: "kill -9 Temporal, restart on its state after 2 s", inject: func(r *scenarioRun) time.Time {
		r.s.temporal.Kill()
		time.Sleep(2 * time.Second)
		end := time.Now()
		r.s.temporal.Start()
		return end
	}},
	{name: "PostgreSQL stopped (immediate) for 30 s", inject: func(r *scenarioRun) time.Time {
		r.s.pg.StopImmediate()
		time.Sleep(30 * time.Second)
		end := time.Now()
		r.s.pg.Start()
		return end
	}},
	// The worker is paused so that messages queue up in Temporal, then
	// resumed while PostgreSQL is away: it must hold every queued message
	// until the database answers again.
	{name: "`worker` SIGSTOP 10 s, then PostgreSQL stopped 30 s (worker resumed)", split: true, inject: func(r *scenarioRun) time.Time {
		if err := r.worker.signal(syscall.SIGSTOP); err != nil {
			r.t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		r.s.pg.StopImmediate()
		if err := r.worker.signal(syscall.SIGCONT); err != nil {
			r.t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		end := time.Now()
		r.s.pg.Start()
		return end
	}},
}

// row is one line of the printed table.
type row struct {
	name                                   string
	sent, acked, stored, dup, lost         int
	during                                 string
	fault, firstAfter, backlog, wholeStory time.Duration
}

// buildBinary builds cmd/omnichat once for the whole suite.
func buildBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("OMNICHAT_FAULTS_BIN"); bin != "" {
		return bin // another build, to compare releases
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "omnichat")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/omnichat")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestNothingAcknowledgedIsLost streams signed webhook messages across many
// conversations while one fault at a time is injected, and checks after
// each that every acknowledged message is stored exactly once, that chats
// are still routed, that no workflow failed and that omnichat answered the
// provider something it retries (never 500, never a hang) meanwhile.
func TestNothingAcknowledgedIsLost(t *testing.T) {
	if os.Getenv("OMNICHAT_FAULTS") == "" {
		t.Skip("the fault suite runs with OMNICHAT_FAULTS=1 (make test-faults)")
	}
	bin := buildBinary(t)
	var rows []row
	var mu sync.Mutex
	for i, sc := range scenarios {
		t.Run(fmt.Sprintf("%d", i+1), func(t *testing.T) {
			t.Logf("scenario: %s", sc.name)
			r := runScenario(t, bin, sc, fmt.Sprintf("f%d", i+1))
			mu.Lock()
			rows = append(rows, r)
			mu.Unlock()
		})
	}
	printTable(rows)
}

func printTable(rows []row) {
	var b strings.Builder
	b.WriteString("\n| fault | sent | acked | stored | dup | lost | answers during the fault | fault | first 2xx after | backlog stored after | scenario |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		backlog := secs(r.backlog)
		if r.backlog < 0 {
			backlog = "never"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n", r.name, r.sent, r.acked, r.stored, r.dup, r.lost, r.during,
			secs(r.fault), secs(r.firstAfter), backlog, secs(r.wholeStory))
	}
	fmt.Print(b.String())
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func runScenario(t *testing.T, bin string, sc scenario, runID string) row {
	began := time.Now()
	s := newStack(t, bin)
	r := &scenarioRun{t: t, s: s}
	if sc.split {
		r.serve = s.app.start("serve")
		r.worker = s.app.start("worker")
	} else {
		r.all = s.app.start("all")
	}
	s.app.waitReady(r.api())
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"all", "serve", "worker"} {
				if _, err := os.Stat(filepath.Join(s.dir, name+".log")); err == nil {
					t.Logf("end of %s.log:\n%s", name, s.app.logTail(name, 40))
				}
			}
		}
	})
	w := setup(t, s)
	l := newLoad(s, w, runID)
	l.start()
	agents := agentsAtWork(w)
	defer agents.Stop()
	mon := watchCapacity(s)
	defer mon.stop()

	waitFor(t, 90*time.Second, "50 messages acknowledged before the fault", func() error {
		if _, msgs := l.snapshot(); countAcked(msgs) < 50 {
			return fmt.Errorf("%d acknowledged", countAcked(msgs))
		}
		return nil
	})

	r.faultStart = time.Now()
	r.faultEnd = sc.inject(r)
	t.Logf("fault from %s to %s", r.faultStart.Format("15:04:05.000"), r.faultEnd.Format("15:04:05.000"))
	if r.all != nil || r.serve != nil {
		s.app.waitReady(r.api())
	}

	// The backlog: every message acknowledged before the fault ended.
	_, before := l.snapshot()
	var backlog []string
	for _, m := range before {
		if m.acked {
			backlog = append(backlog, m.id)
		}
	}
	backlogStored := make(chan time.Duration, 1)
	go func() {
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			if n, err := storedAmong(s, w.channel, backlog); err == nil && n == len(backlog) {
				backlogStored <- time.Since(r.faultEnd)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		backlogStored <- -1
	}()

	// Go on sending until omnichat acknowledged again, and a little longer.
	waitFor(t, 2*time.Minute, "a message acknowledged after the fault", func() error {
		calls, _ := l.snapshot()
		for _, c := range calls {
			if c.status/100 == 2 && c.at.Add(c.took).After(r.faultEnd) {
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	time.Sleep(5 * time.Second)
	l.Stop()
	calls, msgs := l.snapshot()

	acked := map[string]bool{}
	for _, m := range msgs {
		if m.acked {
			acked[m.id] = true
		}
	}
	// Wait for every acknowledged message to be stored.
	var counts map[string]int
	storeDeadline := time.Now().Add(4 * time.Minute)
	for {
		var err error
		counts, err = storedCounts(s, w.channel)
		missing := 0
		for id := range acked {
			if counts[id] == 0 {
				missing++
			}
		}
		if err == nil && missing == 0 {
			break
		}
		if time.Now().After(storeDeadline) {
			t.Errorf("%d of %d acknowledged messages not stored within 4 min (last error %v)", missing, len(acked), err)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res := row{name: sc.name, sent: len(msgs), acked: len(acked), fault: r.faultEnd.Sub(r.faultStart)}
	for id, n := range counts {
		if !strings.HasPrefix(id, runID+"-") {
			continue
		}
		res.stored++
		if n > 1 {
			res.dup++
			t.Errorf("message %s stored %d times", id, n)
		}
	}
	for id := range acked {
		if counts[id] == 0 {
			res.lost++
			if res.lost <= 10 {
				t.Errorf("message %s acknowledged and not stored", id)
			}
		}
	}
	select {
	case d := <-backlogStored:
		res.backlog = d
		if d < 0 {
			t.Errorf("the %d messages acknowledged before the fault ended were not all stored within 4 min", len(backlog))
		}
	case <-time.After(4 * time.Minute):
		t.Error("backlog watcher did not report")
	}

	res.during, res.firstAfter = judgeCalls(t, sc, r, calls)
	for _, why := range unavailableReasons(s) {
		t.Logf("503 because: %s", why)
	}
	checkChats(t, s, r, agents)
	checkWorkflows(t, s)
	for _, over := range mon.stop() {
		t.Errorf("over an agent's SimultaneousChats (%d) or to nobody: %s", simultaneous, over)
	}
	// An offer expires after the accept timeout; when that came due while
	// PostgreSQL was away, by a database retry at most dbRetryCeiling (30 s)
	// after it is back.
	longest := mon.longestOffer.Load().(time.Duration)
	if limit := models.MinutesToDuration(acceptTimeoutMinutes) + res.fault + 45*time.Second; longest > limit {
		t.Errorf("a chat stayed offered for %s, more than the accept timeout plus the fault plus the retries' ceiling (%s)", longest.Round(time.Second), limit)
	}
	t.Logf("longest offer seen: %s", longest.Round(100*time.Millisecond))
	for _, p := range []*proc{r.all, r.serve, r.worker} {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			t.Errorf("omnichat %s exited during the scenario:\n%s", p.name, s.app.logTail(p.name, 30))
		default:
		}
	}
	res.wholeStory = time.Since(began)
	t.Logf("sent %d, acknowledged %d, stored %d, duplicates %d, lost %d; answers during the fault: %s; fault %s; first 2xx after %s; backlog stored after %s",
		res.sent, res.acked, res.stored, res.dup, res.lost, res.during, secs(res.fault), secs(res.firstAfter), secs(res.backlog))
	return res
}

func countAcked(msgs []message) int {
	n := 0
	for _, m := range msgs {
		if m.acked {
			n++
		}
	}
	return n
}

// storedCounts counts the stored customer messages of the channel by external ID.
func storedCounts(s *stack, channel string) (map[string]int, error) {
	out := map[string]int{}
	err := s.query(func(ctx context.Context, db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT external_id, count(*) FROM messages WHERE channel_id = $1 AND direction = 'inbound' GROUP BY external_id`, channel)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			out[id] = n
		}
		return rows.Err()
	})
	return out, err
}

func storedAmong(s *stack, channel string, ids []string) (int, error) {
	counts, err := storedCounts(s, channel)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if counts[id] > 0 {
			n++
		}
	}
	return n, nil
}

// judgeCalls summarises the answers given while the fault lasted and checks
// every answer of the run: 200 or 503 only, never slower than a provider
// waits, and no answer at all only while the API process was down.
func judgeCalls(t *testing.T, sc scenario, r *scenarioRun, calls []call) (string, time.Duration) {
	t.Helper()
	during := map[string]int{}
	slowest := map[string]time.Duration{}
	first := time.Duration(-1)
	bad := map[string]int{}
	for _, c := range calls {
		end := c.at.Add(c.took)
		inFault := end.After(r.faultStart) && c.at.Before(r.faultEnd)
		if inFault {
			during[c.outcome()]++
			slowest[c.outcome()] = max(slowest[c.outcome()], c.took)
		}
		if c.status/100 == 2 && end.After(r.faultEnd) && (first < 0 || end.Sub(r.faultEnd) < first) {
			first = end.Sub(r.faultEnd)
		}
		switch {
		case c.took > hangLimit:
			bad[fmt.Sprintf("%s after %s", c.outcome(), c.took.Round(time.Second))]++
		case c.status == 200 || c.status == 503:
		case c.status == 0 && sc.noAnswerOK && c.err != "timeout" && end.After(r.faultStart.Add(-time.Second)) && c.at.Before(r.faultEnd.Add(30*time.Second)):
			// the API process was killed, then starting again
		default:
			bad[c.outcome()]++
		}
	}
	for what, n := range bad {
		t.Errorf("webhook answered %s %d times; a provider needs 200, or 503 to retry, within %s", what, n, hangLimit)
	}
	keys := make([]string, 0, len(during))
	for k := range during {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d (≤ %s)", k, during[k], secs(slowest[k])))
	}
	if first < 0 {
		t.Error("no 2xx after the fault")
	}
	return strings.Join(parts, " "), first
}

// checkChats checks that routing survived the fault: offers were made after
// it, no offer outlived its timeout or went to nobody, and every chat is
// served and then closed by its completion timer once the agents stop
// closing chats themselves.
func checkChats(t *testing.T, s *stack, r *scenarioRun, agents *desk) {
	t.Helper()
	var offeredAfter int
	if err := s.query(func(ctx context.Context, db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT count(*) FROM chats WHERE offered_at > $1 OR accepted_at > $1`, r.faultEnd).Scan(&offeredAfter)
	}); err != nil {
		t.Fatal(err)
	}
	if offeredAfter == 0 {
		t.Error("no chat was offered or accepted after the fault")
	}
	agents.Finish()
	var finished time.Time
	if err := s.query(func(ctx context.Context, db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT now()`).Scan(&finished)
	}); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%f seconds", acceptTimeoutMinutes*60+20)
	waitFor(t, 3*time.Minute, "every chat served, answered and closed by its completion timer", func() error {
		var stuck, nobody, open int
		err := s.query(func(ctx context.Context, db *sql.DB) error {
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM chats WHERE status = 'offered' AND offered_at < now() - $1::interval`, stale).Scan(&stuck); err != nil {
				return err
			}
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM chats WHERE status = 'offered' AND agent_id IS NULL`).Scan(&nobody); err != nil {
				return err
			}
			return db.QueryRowContext(ctx, `SELECT count(*) FROM chats WHERE status <> 'closed'`).Scan(&open)
		})
		if err != nil {
			return err
		}
		// An expiry that came due while the database was away is applied
		// when a retry reaches it, up to the retries' backoff ceiling
		// later: a stale offer fails the check only if it stays.
		if open > 0 || stuck > 0 || nobody > 0 {
			return fmt.Errorf("%d chats open, of which %d offered for longer than the accept timeout and %d offered to nobody", open, stuck, nobody)
		}
		return nil
	})
	// A close the agents asked for before Finish may still be applied after
	// it (its call given up on by the client, the update going on): only
	// chats no agent ever tried to close must have closed by their timers.
	tried := agents.CloseTried()
	var byTimer, byOther int
	if err := s.query(func(ctx context.Context, db *sql.DB) error {
		return db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE close_reason = 'timeout'), count(*) FILTER (WHERE close_reason IS DISTINCT FROM 'timeout' AND NOT id::text = ANY($2))
			FROM chats WHERE closed_at > $1`, finished, tried).Scan(&byTimer, &byOther)
	}); err != nil {
		t.Fatal(err)
	}
	if byOther > 0 {
		t.Errorf("%d chats closed otherwise than by their completion timer after the agents stopped closing", byOther)
	}
	t.Logf("%d chats closed by their completion timers at the end", byTimer)
}

// checkWorkflows checks that no workflow failed, was terminated or timed out.
func checkWorkflows(t *testing.T, s *stack) {
	t.Helper()
	c, err := s.temporal.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	statuses := map[enumspb.WorkflowExecutionStatus]int{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000, NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			statuses[e.GetStatus()]++
			switch e.GetStatus() {
			case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			default:
				t.Errorf("workflow %s ended %s", e.GetExecution().GetWorkflowId(), e.GetStatus())
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	t.Logf("workflows by status: %v", statuses)
}

// capacityWatch samples, while the scenario runs, how many chats each agent
// holds (offered or in progress), offers to nobody, and the longest a chat
// stayed offered.
type capacityWatch struct {
	done chan struct{}
	out  chan []string
	// longestOffer is the longest a chat was seen offered.
	longestOffer atomic.Value
}

func watchCapacity(s *stack) *capacityWatch {
	cw := &capacityWatch{done: make(chan struct{}), out: make(chan []string, 1)}
	cw.longestOffer.Store(time.Duration(0))
	go func() {
		var over []string
		for {
			select {
			case <-cw.done:
				cw.out <- over
				return
			case <-time.After(300 * time.Millisecond):
			}
			_ = s.query(func(ctx context.Context, db *sql.DB) error {
				var oldest float64
				var nobody int
				if err := db.QueryRowContext(ctx, `SELECT COALESCE(max(extract(epoch FROM now() - offered_at)), 0), count(*) FILTER (WHERE agent_id IS NULL)
					FROM chats WHERE status = 'offered'`).Scan(&oldest, &nobody); err != nil {
					return err
				}
				if d := time.Duration(oldest * float64(time.Second)); d > cw.longestOffer.Load().(time.Duration) {
					cw.longestOffer.Store(d)
				}
				if nobody > 0 && len(over) < 10 {
					over = append(over, fmt.Sprintf("%d chats offered to nobody at %s", nobody, time.Now().Format("15:04:05.000")))
				}
				rows, err := db.QueryContext(ctx, `SELECT agent_id::text, count(*) FROM chats WHERE status IN ('offered', 'in_progress') AND agent_id IS NOT NULL GROUP BY agent_id HAVING count(*) > $1`, simultaneous)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var id string
					var n int
					if rows.Scan(&id, &n) == nil && len(over) < 10 {
						over = append(over, fmt.Sprintf("%s held %d at %s", id, n, time.Now().Format("15:04:05.000")))
					}
				}
				return rows.Err()
			})
		}
	}()
	return cw
}

// stop ends the sampling and returns what went over the limit; it may be
// called more than once.
func (cw *capacityWatch) stop() []string {
	select {
	case <-cw.done:
		return nil
	default:
	}
	close(cw.done)
	return <-cw.out
}

// unavailableReasons lists why the API answered 503, from its log: each
// distinct reason (request IDs and addresses aside) with how often it came.
func unavailableReasons(s *stack) []string {
	counts := map[string]int{}
	for _, name := range []string{"all", "serve"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name+".log"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, `msg="dependency unavailable"`) {
				continue
			}
			_, why, _ := strings.Cut(line, " error=")
			if len(why) > 160 {
				why = why[:160]
			}
			counts[why]++
		}
	}
	out := make([]string, 0, len(counts))
	for why, n := range counts {
		out = append(out, fmt.Sprintf("%d× %s", n, why))
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = out[:5]
	}
	return out
}
