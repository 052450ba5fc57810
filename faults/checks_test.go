package faults

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
)

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
	// Routing resumes on its own schedule (database retries back off to 30 s
	// apart), so this waits for an offer after the fault instead of looking
	// the moment the backlog is stored.
	waitFor(t, time.Minute, "a chat offered or accepted after the fault", func() error {
		var offeredAfter int
		if err := s.query(func(ctx context.Context, db *sql.DB) error {
			return db.QueryRowContext(ctx, `SELECT count(*) FROM chats WHERE offered_at > $1 OR accepted_at > $1`, r.faultEnd).Scan(&offeredAfter)
		}); err != nil {
			return err
		}
		if offeredAfter == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
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
