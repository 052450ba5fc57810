package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
