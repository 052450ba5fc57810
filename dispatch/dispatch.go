// Package dispatch offers waiting chats to free agents. It reads a snapshot
// under the routing lock, lets the routing package decide, records the offers,
// and tells each chat workflow about its offer.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/routing"
)

// maxChatsPerRun bounds one dispatch run; a later kick picks up the rest.
const maxChatsPerRun = 500

// Notifier tells a chat workflow it was offered.
type Notifier interface {
	NotifyOffer(ctx context.Context, o models.Offer, acceptTimeout time.Duration) error
}

// Dispatcher assigns waiting chats of available_agent queues.
type Dispatcher struct {
	store  *models.Store
	notify Notifier
}

// New builds a dispatcher.
func New(store *models.Store, notify Notifier) *Dispatcher {
	return &Dispatcher{store: store, notify: notify}
}

// Decide turns a snapshot into offers with routing.Assign.
func Decide(snap models.RoutingSnapshot) []models.Offer {
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
	var offers []models.Offer
	for _, as := range routing.Assign(waiting, agents, snap.Limit) {
		w := byID[as.ChatID]
		offers = append(offers, models.Offer{ChatID: w.ID, AgentID: uuid.MustParse(as.AgentID), WorkflowID: w.WorkflowID})
	}
	return offers
}

// Assign records offers for as many waiting chats as free capacity allows,
// looking at most at maxChatsPerRun of them; more reports that a further pass
// may find more to offer.
func (d *Dispatcher) Assign(ctx context.Context) (offers []models.Offer, acceptTimeout time.Duration, more bool, err error) {
	offers, snap, err := d.store.AssignWaiting(ctx, maxChatsPerRun, Decide)
	if err != nil {
		return nil, 0, false, fmt.Errorf("assign waiting chats: %w", err)
	}
	return offers, snap.Accept, len(snap.Waiting) == maxChatsPerRun && len(offers) > 0, nil
}

// notifyParallel bounds the signals a pass sends at once: one pass can offer
// hundreds of chats when much capacity frees, and one by one they would delay
// every offer behind them.
const notifyParallel = 16

// Notify tells every offered chat's workflow; it tries all and returns the errors together.
func (d *Dispatcher) Notify(ctx context.Context, offers []models.Offer, acceptTimeout time.Duration) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, notifyParallel)
	)
	for _, o := range offers {
		sem <- struct{}{}
		wg.Add(1)
		go func(o models.Offer) {
			defer func() { <-sem; wg.Done() }()
			if err := d.notify.NotifyOffer(ctx, o, acceptTimeout); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("notify chat %s: %w", o.ChatID, err))
				mu.Unlock()
			}
		}(o)
	}
	wg.Wait()
	return errors.Join(errs...)
}
