package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/routing"
	"github.com/omnichat/omnichat/telemetry"
)

const (
	// perQueue bounds how many waiting chats of one queue a pass reads.
	perQueue = 500
	// notifyParallel bounds the signals a pass sends at once: one pass can
	// offer hundreds of chats when much capacity frees.
	notifyParallel = 16
	// safetyInterval is how often the dispatcher passes with no wake-up: it
	// re-sends offers whose notification failed and catches what a lost
	// connection missed.
	safetyInterval = 5 * time.Second
	// passTimeout bounds one pass, so a database that hangs cannot stall routing.
	passTimeout = 30 * time.Second
	// unnotifiedAfter: an offer not yet told to its chat this long after it
	// was recorded was missed by the pass that made it.
	unnotifiedAfter = 2 * time.Second
)

// Routing offers waiting chats of available_agent queues to free agents:
// one dispatcher runs passes when woken (every change that may let a chat be
// offered wakes it in its own transaction) and on a safety interval.
type Routing struct {
	store   *models.Store
	runtime ChatRuntime
	logger  *slog.Logger
	safety  time.Duration
	metrics *telemetry.Metrics
}

// Decide turns a snapshot into offers with routing.Assign.
func Decide(snap models.RoutingSnapshot) []Offer {
	waiting := make([]routing.Waiting, len(snap.Waiting))
	byID := make(map[string]models.WaitingChat, len(snap.Waiting))
	for i, w := range snap.Waiting {
		waiting[i] = routing.Waiting{ChatID: w.ID.String(), QueueID: w.QueueID.String()}
		byID[w.ID.String()] = w
	}
	agents := make([]routing.Agent, len(snap.Agents))
	for i, a := range snap.Agents {
		qs := make(map[string]bool, len(a.QueueIDs))
		for _, q := range a.QueueIDs {
			qs[q.String()] = true
		}
		agents[i] = routing.Agent{ID: a.ID.String(), Load: a.Load, LastAcceptedAt: a.LastAcceptedAt, Queues: qs}
	}
	var offers []Offer
	for _, as := range routing.Assign(waiting, agents, snap.Limit) {
		w := byID[as.ChatID]
		offers = append(offers, Offer{ChatID: w.ID, AgentID: uuid.MustParse(as.AgentID), WorkflowID: w.WorkflowID})
	}
	return offers
}

// PassResult says what one pass did.
type PassResult struct {
	Offers int
	// More: a queue had more waiting chats than a pass reads; pass again.
	More bool
}

// Pass records offers for as many waiting chats as free capacity allows and
// tells each chat's workflow; it also tells again any offer an earlier pass
// recorded but could not tell.
func (r *Routing) Pass(ctx context.Context) (PassResult, error) {
	offers, snap, more, err := r.store.AssignWaiting(ctx, perQueue, Decide)
	if err != nil {
		return PassResult{}, fmt.Errorf("assign waiting chats: %w", err)
	}
	missed, err := r.store.UnnotifiedOffers(ctx, time.Now().Add(-unnotifiedAfter), perQueue)
	if err != nil {
		return PassResult{}, fmt.Errorf("offers not yet told: %w", err)
	}
	if len(missed) > 0 && snap.Accept == 0 {
		rs, err := r.store.GetRoutingSettings(ctx)
		if err != nil {
			return PassResult{}, err
		}
		snap.Accept = rs.AcceptTimeout
	}
	r.metrics.Offered(len(offers))
	err = r.notify(ctx, append(offers, missed...), snap.Accept)
	return PassResult{Offers: len(offers), More: more}, err
}

// notify tells every offered chat's workflow, records which were told, and
// returns the failures together; those are told again by a later pass.
func (r *Routing) notify(ctx context.Context, offers []Offer, acceptTimeout time.Duration) error {
	var (
		mu    sync.Mutex
		told  []uuid.UUID
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, notifyParallel)
	)
	for _, o := range offers {
		slots <- struct{}{}
		wg.Add(1)
		go func(o Offer) {
			defer func() { <-slots; wg.Done() }()
			err := r.runtime.NotifyOffer(ctx, o, acceptTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("notify chat %s: %w", o.ChatID, err))
				return
			}
			told = append(told, o.ChatID)
		}(o)
	}
	wg.Wait()
	if err := r.store.MarkOffersNotified(ctx, told); err != nil {
		errs = append(errs, fmt.Errorf("record notified offers: %w", err))
	}
	return errors.Join(errs...)
}

// Wake tells the dispatcher that routing may have work.
func (r *Routing) Wake(ctx context.Context) error { return r.store.WakeRouting(ctx) }

// Run is the dispatcher: it listens for wake-ups and passes on each (wake-ups
// that come during a pass cause one more), on every safety interval, and
// right after (re)connecting. It returns when ctx ends. Run one per
// deployment; passes are serialised by the routing lock in any case.
func (r *Routing) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		r.listen(ctx, poke)
	}()
	defer func() { <-listened }()
	tick := time.NewTicker(r.safety)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, passTimeout)
		res, err := r.Pass(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			r.logger.WarnContext(ctx, "routing pass failed; the next one retries", "error", err)
		case res.More:
			poke()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-tick.C:
		}
	}
}

// listen keeps routing's LISTEN connection up, and pokes a pass after each
// (re)connection: wake-ups sent meanwhile were lost.
func (r *Routing) listen(ctx context.Context, poke func()) {
	keepListening(ctx, r.logger, "routing", r.store.ListenRouting, poke)
}

// keepListening holds a LISTEN connection through listen until ctx ends,
// reconnecting with backoff (1 s doubling to 10 s, reset once connected).
// wake runs for every notification and after every (re)connection.
func keepListening(ctx context.Context, logger *slog.Logger, what string,
	listen func(ctx context.Context, listening, wake func()) error, wake func()) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := listen(ctx, func() { backoff = time.Second; wake() }, wake)
		if ctx.Err() != nil {
			return
		}
		logger.WarnContext(ctx, what+" listener lost its connection; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
