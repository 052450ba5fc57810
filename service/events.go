package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Event log types, named here so callers need not import models.
type (
	Event    = models.Event
	EventPos = models.EventPos
)

// ErrTooManyStreams: the user already holds as many event streams as allowed.
var ErrTooManyStreams = errors.New("too many event streams for this user")

// pruneEvery is how often an API process deletes events past retention.
const pruneEvery = 10 * time.Minute

// Events serves the event log the database triggers write: it resolves where
// a reader resumes, reads what the reader may see, and wakes the readers of
// this process when PostgreSQL notifies that events were written.
type Events struct {
	store  *models.Store
	logger *slog.Logger
	// Retention is how long events are kept; a reader resuming from before
	// what was pruned is told to resync.
	Retention time.Duration
	// PerUser bounds the streams one user holds in this process.
	PerUser int

	// wakes coalesces the wake-ups writers send after their commits.
	wakes struct {
		sync.Mutex
		sending, again bool
	}

	once    sync.Once
	mu      sync.Mutex
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
	subs    map[*Subscription]struct{}
	perUser map[uuid.UUID]int
	running sync.WaitGroup
}

// Subscription is one open stream: Wake fires after events were written.
type Subscription struct {
	Wake   chan struct{}
	Closed <-chan struct{}
	user   uuid.UUID
	ev     *Events
}

// Start listens for wake-ups and prunes past retention from now on, before
// any stream opens (Subscribe starts them too): an API process keeps the log
// pruned even when nobody streams from it.
func (e *Events) Start() { e.once.Do(func() { e.start(true) }) }

// Subscribe opens a stream for user: ErrTooManyStreams over the bound,
// ErrUnavailable once the process is shutting down.
func (e *Events) Subscribe(user uuid.UUID) (*Subscription, error) {
	e.once.Do(func() { e.start(true) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("shutting down: %w", domain.ErrUnavailable)
	}
	if e.perUser[user] >= e.PerUser {
		return nil, ErrTooManyStreams
	}
	e.perUser[user]++
	s := &Subscription{Wake: make(chan struct{}, 1), Closed: e.done, user: user, ev: e}
	e.subs[s] = struct{}{}
	return s, nil
}

// WakeAfterCommit wakes the event readers of every process after a
// transaction that deferred its wake-up (models.DirectResult.Stored)
// committed. Wake-ups asked for while one is being sent are sent as one
// more, so a burst costs a few NOTIFYs, not one per message.
func (e *Events) WakeAfterCommit() {
	e.wakes.Lock()
	if e.wakes.sending {
		e.wakes.again = true
		e.wakes.Unlock()
		return
	}
	e.wakes.sending = true
	e.wakes.Unlock()
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := e.store.WakeEvents(ctx); err != nil {
				// The readers' poll finds the events a little later.
				e.logger.Debug("event wake-up not sent", "error", err)
			}
			cancel()
			e.wakes.Lock()
			if !e.wakes.again {
				e.wakes.sending = false
				e.wakes.Unlock()
				return
			}
			e.wakes.again = false
			e.wakes.Unlock()
		}
	}()
}

// Streams is how many event streams this process holds open.
func (e *Events) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// Close ends the subscription.
func (s *Subscription) Close() {
	e := s.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[s]; !ok {
		return
	}
	delete(e.subs, s)
	if e.perUser[s.user]--; e.perUser[s.user] <= 0 {
		delete(e.perUser, s.user)
	}
}

// Close ends every stream of this process and stops listening: called when
// the HTTP server shuts down, so streams end cleanly instead of holding it.
func (e *Events) Close() {
	e.once.Do(func() { e.start(false) })
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
		e.stop()
	}
	e.mu.Unlock()
	e.running.Wait()
}

// start prepares the streams of this process and, when run, the listener and
// the pruning that serve them: a process that never streams never listens.
func (e *Events) start(run bool) {
	ctx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan struct{})
	e.subs, e.perUser = map[*Subscription]struct{}{}, map[uuid.UUID]int{}
	if !run {
		return
	}
	e.running.Add(2)
	go func() { defer e.running.Done(); e.listen(ctx) }()
	go func() { defer e.running.Done(); e.prune(ctx) }()
}

// wakeAll pokes every stream; a stream already poked keeps one pending wake-up.
func (e *Events) wakeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		select {
		case s.Wake <- struct{}{}:
		default:
		}
	}
}

// listen keeps the events' LISTEN connection up; after each (re)connection
// every stream reads, as wake-ups sent meanwhile were lost.
func (e *Events) listen(ctx context.Context) {
	keepListening(ctx, e.logger, "event", e.store.ListenEvents, e.wakeAll)
}

// prune deletes events past retention now and every pruneEvery.
func (e *Events) prune(ctx context.Context) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		if _, err := e.Prune(ctx); err != nil && ctx.Err() == nil {
			e.logger.WarnContext(ctx, "pruning events failed; the next pass retries", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Prune deletes the events older than the retention window.
func (e *Events) Prune(ctx context.Context) (int64, error) {
	return e.store.PruneEvents(ctx, time.Now().Add(-e.Retention))
}

// Resume says where a stream starts: after lastID, or at the live tail when
// lastID is empty. resync is true when lastID is older than what was pruned:
// the reader missed events and must reload; it then goes on from the tail.
func (e *Events) Resume(ctx context.Context, lastID string) (pos EventPos, resync bool, err error) {
	if lastID != "" {
		pos, err = models.ParseEventPos(lastID)
		if err != nil {
			return pos, false, fmt.Errorf("Last-Event-ID: %w: %w", err, domain.ErrInvalid)
		}
		horizon, err := e.store.EventHorizon(ctx)
		if err != nil {
			return pos, false, err
		}
		if !pos.Less(horizon) {
			return pos, false, nil
		}
		resync = true
	}
	pos, err = e.store.EventTail(ctx)
	return pos, resync, err
}

// Read returns up to limit events after pos that p may see, and where to read next.
func (e *Events) Read(ctx context.Context, p *Principal, pos EventPos, limit int) ([]Event, EventPos, error) {
	return e.store.ReadEvents(ctx, models.EventViewer{UserID: p.ID, Admin: p.Admin}, pos, limit)
}
