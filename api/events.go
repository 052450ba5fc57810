package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/service"
)

// Event stream timing: a heartbeat keeps proxies from closing a quiet stream,
// the poll is the safety net for a lost wake-up, and every write gets its own
// deadline so a stream outlives the server's WriteTimeout but a stuck client
// is dropped.
const (
	heartbeatEvery  = 15 * time.Second
	eventPollEvery  = 5 * time.Second
	eventWriteLimit = 10 * time.Second
	eventBatch      = 200
	// eventRecheck is the first re-read after a read that found events: an
	// event of a transaction that commits while an older one still runs is
	// readable only once that older one ended, which may send no wake-up.
	// The re-reads double up to eventPollEvery.
	eventRecheck = 20 * time.Millisecond
)

// streamEvents serves GET /api/v1/events as Server-Sent Events: every event
// the user may see after Last-Event-ID (header, or last_event_id in the query
// for clients that re-create their EventSource), then the live tail.
func (s *server) streamEvents(c *gin.Context) {
	p := principal(c)
	lastID := c.GetHeader("Last-Event-ID")
	if lastID == "" {
		lastID = c.Query("last_event_id")
	}
	ctx := c.Request.Context()
	pos, resync, err := s.svc.Events.Resume(ctx, lastID)
	if err != nil {
		fail(c, err)
		return
	}
	sub, err := s.svc.Events.Subscribe(p.ID)
	if errors.Is(err, service.ErrTooManyStreams) {
		c.Header("Retry-After", "5")
		problem(c, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	defer sub.Close()

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	write := func(b []byte) error {
		// Not every writer supports deadlines (tests' recorders); the write still goes.
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteLimit))
		if _, err := c.Writer.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The first block tells the client where it stands: resync when it
	// missed pruned events, ready otherwise; both carry the position.
	first := "ready"
	if resync {
		first = "resync"
	}
	if err := write(fmt.Appendf(nil, "retry: 2000\nid: %s\nevent: %s\ndata: {}\n\n", pos, first)); err != nil {
		return
	}
	heartbeat := time.NewTicker(s.EventHeartbeat)
	defer heartbeat.Stop()
	poll := time.NewTicker(eventPollEvery)
	defer poll.Stop()
	recheck := time.NewTimer(eventPollEvery)
	defer recheck.Stop()
	recheckIn := eventPollEvery
	sent := pos
	for {
		found := false
		for more := true; more; {
			events, next, err := s.svc.Events.Read(ctx, p, pos, eventBatch)
			if err != nil {
				if ctx.Err() == nil {
					loggerFrom(c).WarnContext(ctx, "reading events failed; retrying at the next poll", "error", err)
				}
				break
			}
			found = found || len(events) > 0
			var buf bytes.Buffer
			for _, e := range events {
				fmt.Fprintf(&buf, "id: %s\nevent: %s\ndata: %s\n\n", e.Pos, e.Type, bytes.ReplaceAll(e.Data, []byte("\n"), nil))
				sent = e.Pos
			}
			if buf.Len() > 0 {
				if err := write(buf.Bytes()); err != nil {
					return
				}
			}
			pos, more = next, len(events) == eventBatch
		}
		if found {
			recheckIn = eventRecheck
		} else {
			recheckIn = min(2*recheckIn, eventPollEvery)
		}
		recheck.Reset(recheckIn)
		select {
		case <-recheck.C:
		case <-ctx.Done():
			return
		case <-sub.Closed:
			return
		case <-sub.Wake:
		case <-poll.C:
		case <-heartbeat.C:
			// A stream lives longer than its credential may: it ends once the
			// session or token has ended, and follows a changed permission.
			np, err := s.reauthenticate(c)
			if errors.Is(err, domain.ErrNotFound) {
				return
			}
			if err == nil {
				p = np
			}
			// A comment, and the position read up to: a client that saw no
			// event for a long time resumes from here, not from before the
			// retention window.
			block := ": heartbeat\n\n"
			if sent.Less(pos) {
				block = fmt.Sprintf(": heartbeat\nid: %s\n\n", pos)
				sent = pos
			}
			if err := write([]byte(block)); err != nil {
				return
			}
		}
	}
}
