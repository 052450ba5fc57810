package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/telemetry"
)

// ChatNotice is what a chat's workflow is told about a message the API
// stored without it (models.NoticeAnswered, models.NoticeAttachment).
type ChatNotice = models.ChatNotice

// ChatNotifier hands notices to chat workflows. A workflow that is gone
// (its chat closed) is not an error: nothing is left to tell it.
type ChatNotifier interface {
	Notify(ctx context.Context, n ChatNotice) error
}

// Notices drains the notice outbox into the chat workflows. Every process
// that runs Run takes its own share (FOR UPDATE SKIP LOCKED); Wake makes the
// drainer of this process look at once instead of at its next poll.
type Notices struct {
	store    *models.Store
	notifier ChatNotifier
	logger   *slog.Logger
	metrics  *telemetry.Metrics
	wake     chan struct{}
	// Poll is how often the outbox is read when nothing wakes the drainer.
	Poll time.Duration
}

func newNotices(store *models.Store, notifier ChatNotifier, logger *slog.Logger, metrics *telemetry.Metrics) *Notices {
	return &Notices{store: store, notifier: notifier, logger: logger, metrics: metrics, wake: make(chan struct{}, 1), Poll: 200 * time.Millisecond}
}

// outboxDepthEvery is how often the drainer counts the outbox for the
// omnichat_outbox_depth gauge.
const outboxDepthEvery = 5 * time.Second

// Wake asks the drainer for a pass now.
func (n *Notices) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends. Postgres outages are waited out.
func (n *Notices) Run(ctx context.Context) {
	if n.notifier == nil {
		return
	}
	const batch = 100
	var counted time.Time
	for {
		claimed, err := n.store.DrainNotices(ctx, batch, func(r models.ChatNotice) error {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return n.notifier.Notify(sctx, r)
		})
		if err != nil && ctx.Err() == nil {
			n.logger.Warn("chat notices not drained; retrying", "error", err)
		}
		if n.metrics != nil && time.Since(counted) >= outboxDepthEvery {
			if depth, err := n.store.NoticeBacklog(ctx); err == nil {
				n.metrics.SetOutboxDepth(int(depth))
				counted = time.Now()
			}
		}
		if err == nil && claimed == batch {
			continue // more are due
		}
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-time.After(n.Poll):
		}
	}
}
