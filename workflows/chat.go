package workflows

import (
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
)

// maxTextLen bounds an agent's message.
const maxTextLen = 10000

// chat is the running state of one ChatWorkflow run. Everything that must
// survive continue-as-new lives in s.
type chat struct {
	in       ChatInput
	s        ChatState
	pending  []InboundMessage
	offers   []Offer
	mu       workflow.Mutex
	version  int
	acting   string // agent whose accept is being processed
	workflow string
	logger   log.Logger
	acts     *activities.Activities
	inbound  workflow.ReceiveChannel
	offerCh  workflow.ReceiveChannel

	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// ChatWorkflow runs one chat from its first message to its close: it stores
// inbound messages, routes the chat, runs the accept and completion timers and
// executes agents' commands (updates) one at a time.
func ChatWorkflow(ctx workflow.Context, in ChatInput) error {
	c := &chat{in: in, pending: in.Pending, mu: workflow.NewMutex(ctx),
		workflow: workflow.GetInfo(ctx).WorkflowExecution.ID, logger: workflow.GetLogger(ctx)}
	if in.State != nil {
		c.s = *in.State
		c.s.Handled = 0
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

func (c *chat) register(ctx workflow.Context) error {
	c.inbound = workflow.GetSignalChannel(ctx, SignalInbound)
	c.offerCh = workflow.GetSignalChannel(ctx, SignalOffer)
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
		var m InboundMessage
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
}

// run is the main loop: it handles messages and offers in arrival order and
// fires the nearest timer, then completes, starts the next chat, or continues as new.
func (c *chat) run(ctx workflow.Context) error {
	for {
		c.drain()
		switch {
		case c.s.Status == StatusClosed:
			// Messages still pending belong to the next chat.
			return c.finish(ctx)
		case len(c.pending) > 0:
			err := c.locked(ctx, func() error {
				if c.s.Status == StatusClosed {
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
		case c.s.Status == "":
			// Only duplicates reached this run: there is no chat to keep open.
			return nil
		}
		if c.shouldContinueAsNew(ctx) {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && len(c.s.Outbox) == 0 && len(c.s.Fetches) == 0 }); err != nil {
				return err
			}
			c.drain()
			if len(c.pending) == 0 && len(c.offers) == 0 && c.s.Status != StatusClosed {
				state := c.s
				return workflow.NewContinueAsNewError(ctx, ChatWorkflow, ChatInput{ChannelID: c.in.ChannelID,
					ConversationID: c.in.ConversationID, State: &state, ContinueAsNewAfter: c.in.ContinueAsNewAfter})
			}
			continue
		}
		seen := c.version
		wake := func() bool {
			return c.inbound.Len() > 0 || c.offerCh.Len() > 0 || c.version != seen || c.s.Status == StatusClosed
		}
		deadline, fire := c.nextDeadline()
		timer := c.armTimer(ctx, deadline)
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
		if err := c.locked(ctx, func() error { return fire(ctx) }); err != nil {
			return err
		}
	}
}

// armTimer keeps one durable timer for the nearest deadline and reuses it
// while the deadline stays the same, so a busy chat does not start and cancel
// a timer for every message. It returns nil when nothing is armed.
func (c *chat) armTimer(ctx workflow.Context, deadline time.Time) workflow.Future {
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
	c.timer, c.timerAt, c.cancelTimer = workflow.NewTimer(tctx, wait), deadline, cancel
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

// nextDeadline returns the nearest timer and what to do when it fires.
func (c *chat) nextDeadline() (time.Time, func(workflow.Context) error) {
	switch {
	case c.s.Status == StatusOffered && !c.s.OfferDeadline.IsZero():
		return c.s.OfferDeadline, c.expireOffer
	case c.s.Status == StatusInProgress && !c.s.CompletionDeadline.IsZero():
		return c.s.CompletionDeadline, func(ctx workflow.Context) error {
			if c.s.Status != StatusInProgress || c.s.CompletionDeadline.IsZero() || workflow.Now(ctx).Before(c.s.CompletionDeadline) {
				return nil // an inbound message or a reply moved the deadline meanwhile
			}
			return c.closeChat(ctx, CloseTimeout)
		}
	}
	return time.Time{}, nil
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

// idSpace names omnichat's derived IDs.
var idSpace = uuid.MustParse("6f6d6e69-6368-6174-0000-000000000001")

// derivedID is a UUID that a replay of the same run derives again, so a local
// activity that ran before its workflow task was lost finds its own writes.
func derivedID(ctx workflow.Context, parts ...string) string {
	return uuid.NewSHA1(idSpace, []byte(workflow.GetInfo(ctx).WorkflowExecution.RunID+"/"+strings.Join(parts, "/"))).String()
}

// ingest handles one inbound message or conversation event; the first
// message opens the chat.
func (c *chat) ingest(ctx workflow.Context, m InboundMessage) error {
	switch m.Event {
	case EventHandoverToUs:
		return c.handoverToUs(ctx)
	case EventHandoverToBot:
		if c.s.Status == StatusWaiting || c.s.Status == StatusOffered || c.s.Status == StatusInProgress {
			return c.closeChat(ctx, CloseByBot)
		}
		return nil
	}
	opening := c.s.Status == ""
	if c.s.ChatID == "" {
		c.s.ChatID = derivedID(ctx, "chat")
	}
	req := activities.IngestRequest{ChatID: c.s.ChatID, OpenChat: opening, WorkflowID: c.workflow, ChannelID: c.in.ChannelID,
		ConversationID: c.in.ConversationID, ExternalID: m.ExternalID, SenderID: m.SenderID, SenderName: m.SenderName,
		Text: m.Text, Kind: m.Kind, SentAt: m.SentAt, Edited: m.Edited, Bot: m.Standby}
	for _, a := range m.Attachments {
		req.Attachments = append(req.Attachments, activities.AttachmentRef{Kind: a.Kind, RemoteID: a.RemoteID, URL: a.URL,
			Name: a.Name, MediaType: a.MediaType, Size: a.Size})
	}
	var res activities.IngestResult
	if err := db(ctx, c.acts.Ingest, req, &res); err != nil {
		// A message that cannot be stored (its channel deleted) must not stop the chat.
		c.logger.Error("inbound message not stored", "ExternalID", m.ExternalID, "Error", err)
		return nil
	}
	if res.Duplicate || (opening && res.ChatID == "") {
		return nil // a duplicate, or an edit of a message of an earlier chat
	}
	c.s.Handled++
	c.s.Fetches = append(c.s.Fetches, res.Attachments...)
	if opening {
		c.s.ContactID, c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = res.ContactID, res.QueueID, res.RoutingRule, res.CompletionTimeout
		c.s.ReleasesThread = res.ReleasesThread
		c.s.Status = StatusWaiting
		if m.Standby {
			c.s.Status = StatusBot
		}
		if res.NewContact {
			c.s.Fetches = append(c.s.Fetches, profileFetch+res.ContactID)
		}
		c.kickIfRouted(ctx)
	}
	if res.Stored && c.s.Status == StatusInProgress {
		c.s.CompletionDeadline = time.Time{} // the customer answered: disarm
	}
	return nil
}

// profileFetch prefixes a contact ID in the fetch queue.
const profileFetch = "profile:"

// handoverToUs moves a bot-owned chat into routing.
func (c *chat) handoverToUs(ctx workflow.Context) error {
	if c.s.Status != StatusBot {
		return nil
	}
	var q activities.QueueInfo
	if err := db(ctx, c.acts.StartRouting, activities.CloseRequest{ChatID: c.s.ChatID}, &q); err != nil {
		return err
	}
	c.s.Status = StatusWaiting
	c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = q.QueueID, q.RoutingRule, q.CompletionTimeout
	c.kickIfRouted(ctx)
	return nil
}

// fetchLoop downloads attachments and profiles in the background, in order.
func (c *chat) fetchLoop(ctx workflow.Context) {
	opts := workflow.WithActivityOptions(ctx, fetchActivity)
	for {
		if err := workflow.Await(ctx, func() bool { return len(c.s.Fetches) > 0 }); err != nil {
			return
		}
		item := c.s.Fetches[0]
		if contactID, ok := strings.CutPrefix(item, profileFetch); ok {
			if err := workflow.ExecuteActivity(opts, c.acts.FetchProfile, activities.ProfileRequest{ContactID: contactID}).Get(ctx, nil); err != nil {
				c.logger.Warn("contact profile not fetched", "Contact", contactID, "Error", err)
			}
		} else if err := workflow.ExecuteActivity(opts, c.acts.FetchAttachment, activities.FetchRequest{AttachmentID: item}).Get(ctx, nil); err != nil {
			_ = db(ctx, c.acts.FailFetch, activities.FetchRequest{AttachmentID: item}, nil)
		}
		c.s.Fetches = c.s.Fetches[1:]
	}
}

// kickIfRouted asks the dispatcher to offer the chat when its queue routes to one agent.
func (c *chat) kickIfRouted(ctx workflow.Context) {
	if c.s.Status == StatusWaiting && c.s.RoutingRule == RuleAvailableAgent {
		c.kick(ctx)
	}
}

func (c *chat) kick(ctx workflow.Context) {
	if err := db(ctx, c.acts.KickDispatch, nil, nil); err != nil {
		c.logger.Error("dispatch kick failed", "Error", err)
	}
}

func (c *chat) onOffer(ctx workflow.Context, o Offer) {
	if o.ChatID != c.s.ChatID || c.s.Status != StatusWaiting {
		return // a repeated or stale offer
	}
	c.s.Status = StatusOffered
	c.s.AgentID = o.AgentID
	c.s.OfferDeadline = workflow.Now(ctx).Add(o.AcceptTimeout)
}

// expireOffer runs when the offered agent did not accept in time.
func (c *chat) expireOffer(ctx workflow.Context) error {
	if c.s.Status != StatusOffered || workflow.Now(ctx).Before(c.s.OfferDeadline) {
		return nil
	}
	err := db(ctx, c.acts.ExpireOffer, activities.ChatAgent{ChatID: c.s.ChatID, AgentID: c.s.AgentID}, nil)
	if err != nil {
		return err
	}
	c.s.Status, c.s.AgentID, c.s.OfferDeadline = StatusWaiting, "", time.Time{}
	c.kick(ctx)
	return nil
}

func (c *chat) closeChat(ctx workflow.Context, reason string) error {
	if err := command(ctx, c.acts.CloseChat, activities.CloseRequest{ChatID: c.s.ChatID, Reason: reason}, nil); err != nil {
		return err
	}
	if c.s.ReleasesThread && reason != CloseByBot {
		opts := workflow.WithActivityOptions(ctx, fetchActivity)
		if err := workflow.ExecuteActivity(opts, c.acts.ReleaseThread, activities.CloseRequest{ChatID: c.s.ChatID}).Get(ctx, nil); err != nil {
			c.logger.Warn("conversation not handed back to the bot", "Chat", c.s.ChatID, "Error", err)
		}
	}
	hadAgent := c.s.AgentID != ""
	c.s.Status, c.s.CloseReason, c.s.CompletionDeadline, c.s.OfferDeadline = StatusClosed, reason, time.Time{}, time.Time{}
	if hadAgent {
		c.kick(ctx) // capacity freed
	}
	return nil
}

// finish waits for handlers and deliveries, then either completes or, when
// messages arrived while the chat closed, starts the next chat with them.
func (c *chat) finish(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && len(c.s.Outbox) == 0 && len(c.s.Fetches) == 0 }); err != nil {
		return err
	}
	c.drain()
	if len(c.pending) > 0 {
		return workflow.NewContinueAsNewError(ctx, ChatWorkflow, ChatInput{ChannelID: c.in.ChannelID,
			ConversationID: c.in.ConversationID, Pending: c.pending, ContinueAsNewAfter: c.in.ContinueAsNewAfter})
	}
	return nil
}

// deliverLoop hands agent messages to the provider one at a time, in order,
// keeping the pause the provider asks between two messages.
func (c *chat) deliverLoop(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(c.s.Outbox) > 0 }); err != nil {
			return
		}
		if wait := c.s.LastSentAt.Add(c.s.Pause).Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return
			}
		}
		id := c.s.Outbox[0]
		var res activities.DeliverResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, deliverActivity), c.acts.Deliver, activities.DeliverRequest{MessageID: id}).Get(ctx, &res)
		var app *temporal.ApplicationError
		if err != nil && !(errors.As(err, &app) && app.Type() == ErrTypePermanentSend) {
			// Out of retries: record it so the agent sees the message failed.
			_ = db(ctx, c.acts.MarkFailed, activities.MarkFailedRequest{MessageID: id, Reason: "not delivered after retries: " + err.Error()}, nil)
		}
		c.s.LastSentAt, c.s.Pause = workflow.Now(ctx), res.Pause
		c.s.Outbox = c.s.Outbox[1:]
	}
}

// ---- updates ----

func (c *chat) validateAccept(req AcceptRequest) error {
	switch {
	case req.AgentID == "":
		return invalid("agent is required")
	case c.s.Status == StatusInProgress && c.s.AgentID == req.AgentID:
		return nil
	case c.acting != "" && c.acting != req.AgentID:
		return conflict("chat is being accepted by another agent")
	case c.s.Status == StatusOffered && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == StatusOffered:
		return conflict("chat is offered to another agent")
	case c.s.Status == StatusWaiting:
		// Postgres decides: the offer may be recorded before its signal arrives.
		return nil
	case c.s.Status == "" && c.s.ChatID != "":
		// The chat row is committed and visible while its first message is being
		// handled; the handler waits for that under the lock and decides then.
		return nil
	case c.s.Status == StatusInProgress:
		return conflict("chat was already accepted by another agent")
	}
	return conflict("chat is " + statusText(c.s.Status))
}

func statusText(s string) string {
	if s == "" {
		return "not open"
	}
	return s
}

func (c *chat) result() ChatResult {
	return ChatResult{ChatID: c.s.ChatID, Status: c.s.Status, AgentID: c.s.AgentID, QueueID: c.s.QueueID}
}

func (c *chat) accept(ctx workflow.Context, req AcceptRequest) (ChatResult, error) {
	if c.acting == "" {
		c.acting = req.AgentID
		defer func() {
			if c.acting == req.AgentID {
				c.acting = ""
			}
		}()
	}
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateAcceptState(req); err != nil {
			return err
		}
		if c.s.Status == StatusInProgress {
			out = c.result()
			return nil
		}
		var res activities.AcceptResult
		if err := command(ctx, c.acts.Accept, activities.ChatAgent{ChatID: c.s.ChatID, AgentID: req.AgentID}, &res); err != nil {
			return commandError(err)
		}
		if !res.Accepted {
			// Postgres knows better (an accept whose answer was lost): adopt it.
			if res.Status == StatusInProgress {
				c.s.Status, c.s.AgentID, c.s.OfferDeadline = StatusInProgress, res.AgentID, time.Time{}
				c.changed()
			}
			return conflict("chat was already accepted by another agent")
		}
		c.s.Status, c.s.AgentID, c.s.OfferDeadline, c.s.CompletionDeadline = StatusInProgress, req.AgentID, time.Time{}, time.Time{}
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}

// validateAcceptState re-checks, under the mutex, the parts of validateAccept
// that do not depend on who is accepting right now.
func (c *chat) validateAcceptState(req AcceptRequest) error {
	switch {
	case c.s.Status == StatusInProgress && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == StatusOffered && c.s.AgentID == req.AgentID:
		return nil
	case c.s.Status == StatusWaiting:
		return nil
	case c.s.Status == StatusInProgress:
		return conflict("chat was already accepted by another agent")
	}
	return conflict("chat is " + statusText(c.s.Status) + " and cannot be accepted by this agent")
}

func (c *chat) assigned(agentID string) error {
	switch {
	case agentID == "":
		return invalid("agent is required")
	case c.s.Status == StatusClosed:
		return conflict("chat is closed")
	case c.s.Status != StatusInProgress:
		return conflict("chat is " + statusText(c.s.Status) + "; accept it first")
	case c.s.AgentID != agentID:
		return forbidden("only the chat's agent can do this")
	}
	return nil
}

func (c *chat) validateSend(req SendRequest) error {
	if err := c.assigned(req.AgentID); err != nil {
		return err
	}
	if (req.Text == "" && req.AttachmentID == "") || len(req.Text) > maxTextLen {
		return invalid("text must be 1 to 10000 bytes, or empty with an attachment")
	}
	return nil
}

func (c *chat) send(ctx workflow.Context, req SendRequest) (SendResult, error) {
	var out SendResult
	err := c.locked(ctx, func() error {
		if err := c.validateSend(req); err != nil {
			return err
		}
		var rec activities.OutboundRecord
		err := command(ctx, c.acts.RecordOutbound, activities.RecordOutboundRequest{MessageID: derivedID(ctx, "message", workflow.GetCurrentUpdateInfo(ctx).ID),
			ChatID: c.s.ChatID, AgentID: req.AgentID, Text: req.Text, IdempotencyKey: req.IdempotencyKey, AttachmentID: req.AttachmentID}, &rec)
		if err != nil {
			return commandError(err)
		}
		out = SendResult{MessageID: rec.MessageID, Status: rec.Status}
		if !rec.New {
			return nil
		}
		c.s.Outbox = append(c.s.Outbox, rec.MessageID)
		if c.s.CompletionTimeout > 0 {
			c.s.CompletionDeadline = workflow.Now(ctx).Add(c.s.CompletionTimeout)
		}
		c.changed()
		return nil
	})
	return out, err
}

func (c *chat) validateClose(req CloseRequest) error { return c.assigned(req.AgentID) }

func (c *chat) close(ctx workflow.Context, req CloseRequest) (ChatResult, error) {
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateClose(req); err != nil {
			return err
		}
		if err := c.closeChat(ctx, CloseByAgent); err != nil {
			return commandError(err)
		}
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}

func (c *chat) validateTransfer(req TransferRequest) error {
	if err := c.assigned(req.AgentID); err != nil {
		return err
	}
	switch {
	case (req.ToQueueID == "") == (req.ToAgentID == ""):
		return invalid("give exactly one of queue and agent")
	case req.ToAgentID == req.AgentID:
		return invalid("the chat is already yours")
	case req.ToQueueID == c.s.QueueID:
		return invalid("the chat is already in this queue")
	}
	return nil
}

func (c *chat) transfer(ctx workflow.Context, req TransferRequest) (ChatResult, error) {
	var out ChatResult
	err := c.locked(ctx, func() error {
		if err := c.validateTransfer(req); err != nil {
			return err
		}
		if req.ToAgentID != "" {
			if err := command(ctx, c.acts.TransferToAgent, activities.ChatAgent{ChatID: c.s.ChatID, AgentID: req.ToAgentID}, nil); err != nil {
				return commandError(err)
			}
			c.s.AgentID = req.ToAgentID
		} else {
			var q activities.QueueInfo
			if err := command(ctx, c.acts.TransferToQueue, activities.TransferToQueueRequest{ChatID: c.s.ChatID, QueueID: req.ToQueueID}, &q); err != nil {
				return commandError(err)
			}
			c.s.QueueID, c.s.RoutingRule, c.s.CompletionTimeout = q.QueueID, q.RoutingRule, q.CompletionTimeout
			c.s.Status, c.s.AgentID = StatusWaiting, ""
		}
		c.s.CompletionDeadline = time.Time{}
		c.kick(ctx) // the previous agent has capacity again; a queue transfer needs routing
		c.changed()
		out = c.result()
		return nil
	})
	return out, err
}
