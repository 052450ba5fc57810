package workflows

import (
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

// Changes to ChatWorkflow that running chats must survive, each a
// workflow.GetVersion change ID. A chat started before a change keeps the
// old behaviour; its next run (continue-as-new, or the next chat) gets the new.
const (
	// changeRoutingWakesInTransactions: the chat no longer signals a
	// dispatcher; the activities that change routing wake it in their own
	// transactions.
	changeRoutingWakesInTransactions = "routing-wakes-in-transactions"
	// changeIngestInPostgres: the API stores the messages of the open chat
	// itself and tells the chat only what concerns it (Notice); the close on
	// the completion timeout is conditional on the customer not having
	// written since the agent's last reply; a closing chat downloads the
	// files still pending.
	changeIngestInPostgres = "ingest-in-postgres"
	// changeClaimOnOpen: the transaction that opens a chat also opens the
	// conversation's gate and offers the chat to a free agent when none of
	// its queue's chats waits, so a new chat needs no gate step, dispatcher
	// pass or offer signal.
	changeClaimOnOpen = "claim-on-open"
	// changeLaterOfferWins: an offer signal recorded after the offer the chat
	// holds replaces it (asked only when that happens, so no marker in most chats).
	changeLaterOfferWins = "later-offer-wins"
)

// chat is the running state of one ChatWorkflow run. Everything that must
// survive continue-as-new lives in s.
type chat struct {
	in       ChatInput
	s        ChatState
	pending  []domain.InboundMessage
	offers   []Offer
	notices  []Notice
	mu       workflow.Mutex
	version  int
	acting   string // agent whose accept is being processed
	workflow string
	logger   log.Logger
	inbound  workflow.ReceiveChannel
	offerCh  workflow.ReceiveChannel
	noticeCh workflow.ReceiveChannel
	// direct: the chat was opened after changeIngestInPostgres.
	direct bool
	// gateAsked is the GateSeq the gate was last asked to open at (-1: never).
	gateAsked int64
	// legacyKicks: the chat started before changeRoutingWakesInTransactions.
	legacyKicks bool
	// claim: the run started after changeClaimOnOpen.
	claim bool

	// Activity groups, for typed references only (never called directly).
	conv     *activities.Conversation
	delivery *activities.Delivery
	media    *activities.Media
	dispatch *activities.Dispatching

	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// ChatWorkflow runs one chat from its first message to its close: it stores
// inbound messages, routes the chat, runs the accept and completion timers and
// executes agents' commands (updates) one at a time.
func ChatWorkflow(ctx workflow.Context, in ChatInput) error {
	c := &chat{in: in, pending: in.Pending, mu: workflow.NewMutex(ctx), gateAsked: -1,
		workflow: workflow.GetInfo(ctx).WorkflowExecution.ID}
	// Each change builds on the ones before it, so a run that has the newest
	// has them all: asking only for it saves every new chat two version
	// markers and two search-attribute upserts (work for Temporal per chat).
	// A run of an earlier release has no marker for it and asks as it did.
	c.claim = workflow.GetVersion(ctx, changeClaimOnOpen, workflow.DefaultVersion, 1) == 1
	if c.claim {
		c.direct = true
	} else {
		c.legacyKicks = workflow.GetVersion(ctx, changeRoutingWakesInTransactions, workflow.DefaultVersion, 1) == workflow.DefaultVersion
		c.direct = workflow.GetVersion(ctx, changeIngestInPostgres, workflow.DefaultVersion, 1) == 1
	}
	if in.State != nil {
		c.s = *in.State
		c.s.Handled = 0
	}
	c.setLogger(ctx)
	if err := c.register(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

// setLogger names the chat in every log line, once its ID is known.
func (c *chat) setLogger(ctx workflow.Context) {
	c.logger = log.With(workflow.GetLogger(ctx), "ConversationID", c.in.ConversationID, "ChannelID", c.in.ChannelID, "ChatID", c.s.ChatID)
}

func (c *chat) register(ctx workflow.Context) error {
	c.inbound = workflow.GetSignalChannel(ctx, SignalInbound)
	c.offerCh = workflow.GetSignalChannel(ctx, SignalOffer)
	c.noticeCh = workflow.GetSignalChannel(ctx, SignalNotice)
	workflow.Go(ctx, c.deliverLoop)
	workflow.Go(ctx, c.fetchLoop)
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (ChatState, error) { return c.s, nil }); err != nil {
		return err
	}
	for _, u := range []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdateAccept, c.accept, c.validateAccept},
		{UpdateSend, c.send, c.validateSend},
		{UpdateClose, c.close, c.validateClose},
		{UpdateTransfer, c.transfer, c.validateTransfer},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.validator}); err != nil {
			return err
		}
	}
	return nil
}

func (c *chat) changed() { c.version++ }

// drain moves buffered signals into the pending lists. Signals are only ever
// taken with ReceiveAsync: a coroutine blocked in Receive would be handed a
// signal before it runs, where a drain before completing could not see it.
func (c *chat) drain() {
	for {
		var m domain.InboundMessage
		if !c.inbound.ReceiveAsync(&m) {
			break
		}
		c.pending = append(c.pending, m)
	}
	for {
		var o Offer
		if !c.offerCh.ReceiveAsync(&o) {
			break
		}
		c.offers = append(c.offers, o)
	}
	for {
		var n Notice
		if !c.noticeCh.ReceiveAsync(&n) {
			break
		}
		c.notices = append(c.notices, n)
	}
}

// run is the main loop: it handles messages and offers in arrival order and
// fires the nearest timer, then completes, starts the next chat, or continues as new.
func (c *chat) run(ctx workflow.Context) error {
	for {
		c.drain()
		switch {
		case c.s.Status == domain.ChatClosed:
			// Messages still pending belong to the next chat.
			return c.finish(ctx)
		case len(c.pending) > 0:
			err := c.locked(ctx, func() error {
				if c.s.Status == domain.ChatClosed {
					return nil // closed while we waited for the lock: it stays pending for the next chat
				}
				m := c.pending[0]
				c.pending = c.pending[1:]
				return c.ingest(ctx, m)
			})
			if err != nil {
				return err
			}
			continue
		case len(c.offers) > 0:
			o := c.offers[0]
			c.offers = c.offers[1:]
			c.onOffer(ctx, o)
			continue
		case len(c.notices) > 0:
			n := c.notices[0]
			c.notices = c.notices[1:]
			if err := c.locked(ctx, func() error { return c.onNotice(ctx, n) }); err != nil {
				return err
			}
			continue
		case c.s.Status == "":
			// Only duplicates reached this run: there is no chat to keep open.
			return nil
		case c.direct && !c.s.Direct && c.gateAsked != c.s.GateSeq && c.inbound.Len() == 0:
			if err := c.locked(ctx, func() error { return c.openGate(ctx) }); err != nil {
				return err
			}
			continue
		}
		if c.shouldContinueAsNew(ctx) {
			if err := workflow.Await(ctx, c.quiet(ctx)); err != nil {
				return err
			}
			c.drain()
			if len(c.pending) == 0 && len(c.offers) == 0 && len(c.notices) == 0 && c.s.Status != domain.ChatClosed {
				state := c.s
				return workflow.NewContinueAsNewError(ctx, ChatWorkflow, ChatInput{ChannelID: c.in.ChannelID,
					ConversationID: c.in.ConversationID, State: &state, ContinueAsNewAfter: c.in.ContinueAsNewAfter})
			}
			continue
		}
		seen := c.version
		wake := func() bool {
			return c.inbound.Len() > 0 || c.offerCh.Len() > 0 || c.noticeCh.Len() > 0 || c.version != seen || c.s.Status == domain.ChatClosed
		}
		deadline, summary, fire := c.nextDeadline()
		timer := c.armTimer(ctx, deadline, summary)
		if timer == nil {
			if err := workflow.Await(ctx, wake); err != nil {
				return err
			}
			continue
		}
		if err := workflow.Await(ctx, func() bool { return wake() || timer.IsReady() }); err != nil {
			return err
		}
		if !timer.IsReady() {
			continue
		}
		c.timer = nil // fired; a new deadline gets a new timer
		recordLateness(ctx, summary, deadline)
		if err := c.locked(ctx, func() error { return fire(ctx) }); err != nil {
			return err
		}
	}
}

// recordLateness records how long after its deadline a timer's workflow
// task started. The SDK's handler records nothing while replaying, and a
// metric is no command, so histories are unaffected.
func recordLateness(ctx workflow.Context, timer string, deadline time.Time) {
	late := max(workflow.Now(ctx).Sub(deadline), 0)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"timer": timer}).Timer(MetricTimerLateness).Record(late)
}

// quiet reports that no handler, delivery or download is in flight.
func (c *chat) quiet(ctx workflow.Context) func() bool {
	return func() bool {
		return workflow.AllHandlersFinished(ctx) && len(c.s.Outbox) == 0 && len(c.s.Fetches) == 0
	}
}

// armTimer keeps one durable timer for the nearest deadline and reuses it
// while the deadline stays the same, so a busy chat does not start and cancel
// a timer for every message. It returns nil when nothing is armed.
func (c *chat) armTimer(ctx workflow.Context, deadline time.Time, summary string) workflow.Future {
	if c.timer != nil && c.timerAt.Equal(deadline) {
		return c.timer
	}
	if c.timer != nil {
		c.cancelTimer()
		c.timer = nil
	}
	if deadline.IsZero() {
		return nil
	}
	tctx, cancel := workflow.WithCancel(ctx)
	wait := deadline.Sub(workflow.Now(ctx))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	c.timer, c.timerAt, c.cancelTimer = workflow.NewTimerWithOptions(tctx, wait, workflow.TimerOptions{Summary: summary}), deadline, cancel
	return c.timer
}

func (c *chat) shouldContinueAsNew(ctx workflow.Context) bool {
	if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return true
	}
	return c.in.ContinueAsNewAfter > 0 && c.s.Handled >= c.in.ContinueAsNewAfter
}

// locked runs fn holding the chat's mutex, so handlers and timers never interleave.
func (c *chat) locked(ctx workflow.Context, fn func() error) error {
	if err := c.mu.Lock(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return fn()
}

// nextDeadline returns the nearest timer, its summary, and what to do when it fires.
func (c *chat) nextDeadline() (time.Time, string, func(workflow.Context) error) {
	switch {
	case c.s.Status == domain.ChatOffered && !c.s.OfferDeadline.IsZero():
		return c.s.OfferDeadline, TimerAccept, c.expireOffer
	case c.s.Status == domain.ChatInProgress && !c.s.CompletionDeadline.IsZero():
		return c.s.CompletionDeadline, TimerCompletion, func(ctx workflow.Context) error {
			if c.s.Status != domain.ChatInProgress || c.s.CompletionDeadline.IsZero() || workflow.Now(ctx).Before(c.s.CompletionDeadline) {
				return nil // an inbound message or a reply moved the deadline meanwhile
			}
			if c.direct {
				return c.closeOnTimeout(ctx)
			}
			if err := c.closeChat(ctx, domain.CloseTimeout); err != nil {
				if cancelled(err) {
					return err
				}
				// Retried until the database answered, so this is a refusal:
				// disarm rather than fire the same deadline forever.
				c.logger.Error("close on completion timeout refused by the store", "Error", err)
				c.s.CompletionDeadline = time.Time{}
			}
			return nil
		}
	}
	return time.Time{}, "", nil
}

// command runs an update handler's database work as a regular activity: it
// runs only once the update is durable in history, so an update the server
// aborts never leaves a write behind, and its result is never lost.
func command(ctx workflow.Context, activity any, arg any, out any) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, dbActivity), activity, arg).Get(ctx, out)
}

// db runs database work outside update handlers as a local activity. A replay
// runs it again, so it must be idempotent (IDs derived from the run do that).
func db(ctx workflow.Context, activity any, arg any, out any) error {
	ctx = workflow.WithLocalActivityOptions(ctx, localDB)
	if arg == nil {
		return workflow.ExecuteLocalActivity(ctx, activity).Get(ctx, out)
	}
	return workflow.ExecuteLocalActivity(ctx, activity, arg).Get(ctx, out)
}

// cancelled reports whether err is the workflow's own cancellation, which
// must end it; any other failure of an activity is a refusal to handle.
func cancelled(err error) bool { return temporal.IsCanceledError(err) }

// idSpace names omnichat's derived IDs.
var idSpace = uuid.MustParse("6f6d6e69-6368-6174-0000-000000000001")

// derivedID is a UUID that a replay of the same run derives again, so a local
// activity that ran before its workflow task was lost finds its own writes.
func derivedID(ctx workflow.Context, parts ...string) string {
	return uuid.NewSHA1(idSpace, []byte(workflow.GetInfo(ctx).WorkflowExecution.RunID+"/"+strings.Join(parts, "/"))).String()
}

// finish waits for handlers and deliveries, then either completes or, when
// messages arrived while the chat closed, starts the next chat with them.
func (c *chat) finish(ctx workflow.Context) error {
	if c.direct && c.s.ChatID != "" {
		// Files of messages stored by the API whose notice had not arrived:
		// the chat is closed in Postgres, so no message joins them now.
		var ids []string
		if err := db(ctx, c.conv.PendingAttachments, activities.ChatRef{ChatID: c.s.ChatID}, &ids); err != nil {
			if cancelled(err) {
				return err
			}
			c.logger.Error("pending downloads not read", "Error", err)
		}
		c.s.Fetches = append(c.s.Fetches, ids...)
	}
	if err := workflow.Await(ctx, c.quiet(ctx)); err != nil {
		return err
	}
	c.drain()
	if len(c.pending) > 0 {
		return workflow.NewContinueAsNewError(ctx, ChatWorkflow, ChatInput{ChannelID: c.in.ChannelID,
			ConversationID: c.in.ConversationID, Pending: c.pending, ContinueAsNewAfter: c.in.ContinueAsNewAfter})
	}
	return nil
}
