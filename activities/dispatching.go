package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/service"
)

// DispatcherShift is how long one RunDispatcher activity runs before its
// workflow starts the next, so no attempt lives forever.
const DispatcherShift = time.Hour

// dispatcherBeat is how often the dispatcher tells Temporal it is alive.
const dispatcherBeat = 2 * time.Second

// errWorkerStopping ends a dispatcher shift early; the retry runs on a worker
// that is up. It is benign, so an orderly stop (Ctrl-C, a deploy) logs no
// error: the SDK logs a benign activity failure at debug level.
var errWorkerStopping = temporal.NewApplicationErrorWithOptions("worker is stopping; the dispatcher moves to another worker",
	"WorkerStopping", temporal.ApplicationErrorOptions{Category: temporal.ApplicationErrorCategoryBenign})

// Dispatching runs routing: the dispatcher that offers waiting chats.
type Dispatching struct {
	Routing *service.Routing
}

// Register adds the group's activities to a worker.
func (a *Dispatching) Register(r Registry) { register(r, a) }

// RunDispatcher is the dispatcher for one shift: it passes whenever routing
// is woken and on a safety interval, heartbeating all along, so that when
// its worker dies Temporal starts it again elsewhere within the heartbeat
// timeout.
func (a *Dispatching) RunDispatcher(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DispatcherShift)
	defer cancel()
	stopping := activity.GetWorkerStopChannel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		beat := time.NewTicker(dispatcherBeat)
		defer beat.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-ctx.Done():
				return
			case <-stopping:
				cancel()
				return
			case <-beat.C:
			}
		}
	}()
	err := a.Routing.Run(ctx)
	cancel()
	wg.Wait()
	select {
	case <-stopping:
		return errWorkerStopping
	default:
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // the shift is over
	}
	return err
}

// DispatchResult says what one dispatch pass did.
type DispatchResult struct {
	Offers int
	// More: the pass stopped at its size limit; another pass may offer more.
	More bool
}

// Dispatch runs one routing pass. It serves the dispatcher workflows of
// earlier releases, which pass once per kick.
func (a *Dispatching) Dispatch(ctx context.Context) (DispatchResult, error) {
	res, err := a.Routing.Pass(ctx)
	if err != nil {
		return DispatchResult{}, failed(ctx, err)
	}
	return DispatchResult{Offers: res.Offers, More: res.More}, nil
}

// KickDispatch wakes the dispatcher. Chats started by earlier releases call
// it; newer chats do not: their changes wake routing in their own transactions.
func (a *Dispatching) KickDispatch(ctx context.Context) error {
	return failed(ctx, a.Routing.Wake(ctx))
}
