package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
)

var (
	conv        *activities.Conversation
	delivery    *activities.Delivery
	media       *activities.Media
	dispatching *activities.Dispatching
)

// registerActivities registers every activity group on a test environment.
func registerActivities(env *testsuite.TestWorkflowEnvironment) {
	for _, g := range []interface{ Register(activities.Registry) }{conv, delivery, media, dispatching} {
		g.Register(env)
	}
}

type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
}

func newHarness(t *testing.T, rule string, completion time.Duration) *harness {
	return newHarnessIngest(t, func(_ context.Context, r activities.IngestRequest) (activities.IngestResult, error) {
		return activities.IngestResult{Stored: true, ChatID: r.ChatID, QueueID: "q1", RoutingRule: rule, CompletionTimeout: completion}, nil
	})
}

// newHarnessIngest is newHarness with the store's answer to Ingest given.
func newHarnessIngest(t *testing.T, ingest func(context.Context, activities.IngestRequest) (activities.IngestResult, error)) *harness {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ChatWorkflow, workflow.RegisterOptions{Name: ChatWorkflowName})
	registerActivities(env)
	env.OnActivity(conv.Ingest, mock.Anything, mock.Anything).Return(ingest)
	env.OnActivity(dispatching.KickDispatch, mock.Anything).Return(nil)
	env.OnActivity(conv.Accept, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ChatAgent) (activities.AcceptResult, error) {
		return activities.AcceptResult{Accepted: true, Status: domain.ChatInProgress, AgentID: r.AgentID}, nil
	})
	env.OnActivity(delivery.Deliver, mock.Anything, mock.Anything).Return(activities.DeliverResult{}, nil)
	env.OnActivity(conv.RecordOutbound, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.RecordOutboundRequest) (activities.OutboundRecord, error) {
		return activities.OutboundRecord{MessageID: r.MessageID, Status: "sending", New: true}, nil
	})
	env.OnActivity(conv.PendingAttachments, mock.Anything, mock.Anything).Return([]string(nil), nil)
	env.OnActivity(conv.OpenGate, mock.Anything, mock.Anything).Return(true, nil)
	return &harness{t: t, env: env}
}

func (h *harness) at(d time.Duration, f func()) { h.env.RegisterDelayedCallback(f, d) }

func (h *harness) state() ChatState {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryState)
	if err != nil {
		h.t.Fatal(err)
	}
	var s ChatState
	if err := v.Get(&s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// update runs an update and reports its error (nil on success).
func (h *harness) update(name string, arg any) {
	h.t.Helper()
	h.env.UpdateWorkflow(name, name+time.Now().String(), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { h.t.Errorf("%s rejected: %v", name, err) },
		OnAccept: func() {},
		OnComplete: func(_ any, err error) {
			if err != nil {
				h.t.Errorf("%s failed: %v", name, err)
			}
		},
	}, arg)
}

func start(h *harness, in ChatInput) {
	if in.ChannelID == "" {
		in.ChannelID, in.ConversationID = "ch1", "conv1"
	}
	if in.Pending == nil {
		in.Pending = []domain.InboundMessage{{ExternalID: "m1", SenderID: "s1", Text: "hi"}}
	}
	h.env.ExecuteWorkflow(ChatWorkflow, in)
}

// An offer that is not accepted in time is taken back, the agent is made
// inactive (ExpireOffer) and the chat goes to the next agent, who accepts.
func TestAcceptTimeoutOffersNextAgent(t *testing.T) {
	h := newHarness(t, domain.RuleAvailableAgent, 0)
	var expired []string
	h.env.OnActivity(conv.ExpireOffer, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ExpireRequest) (bool, error) {
		expired = append(expired, r.AgentID)
		return true, nil
	})
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
	h.at(time.Second, func() {
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "alice", AcceptTimeout: 5 * time.Minute})
	})
	h.at(4*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatOffered || s.AgentID != "alice" {
			t.Errorf("before the timeout: %s %s", s.Status, s.AgentID)
		}
	})
	h.at(5*time.Minute+2*time.Second, func() {
		if s := h.state(); s.Status != domain.ChatWaiting || s.AgentID != "" {
			t.Errorf("after the timeout want waiting without agent, got %s %q", s.Status, s.AgentID)
		}
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "bob", AcceptTimeout: 5 * time.Minute})
	})
	h.at(6*time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "bob"}) })
	h.at(7*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatInProgress || s.AgentID != "bob" {
			t.Errorf("after bob accepts: %s %s", s.Status, s.AgentID)
		}
		h.update(UpdateClose, CloseRequest{AgentID: "bob"})
	})
	start(h, ChatInput{})
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", h.env.IsWorkflowCompleted(), h.env.GetWorkflowError())
	}
	if len(expired) != 1 || expired[0] != "alice" {
		t.Fatalf("ExpireOffer calls: %v, want [alice]", expired)
	}
	// A new chat wakes routing from its activities' transactions, never by a kick.
	h.env.AssertActivityNumberOfCalls(t, "KickDispatch", 0)
}

// The completion timer runs from the agent's last message, an inbound message
// disarms it, and when it fires the chat closes with reason timeout.
func TestCompletionTimerArmedByReplyDisarmedByInbound(t *testing.T) {
	h := newHarness(t, domain.RuleAllAgents, 10*time.Minute)
	var closedAt time.Time
	var reason string
	h.env.OnActivity(conv.CloseOnTimeout, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ChatRef) (bool, error) {
		closedAt, reason = h.env.Now(), domain.CloseTimeout
		return true, nil
	})
	begin := h.env.Now()
	h.at(time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "alice"}) })
	h.at(20*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatInProgress {
			t.Errorf("no reply yet, the chat must stay open: %s", s.Status)
		}
		h.update(UpdateSend, SendRequest{AgentID: "alice", Text: "hello"})
	})
	h.at(25*time.Minute, func() {
		h.env.SignalWorkflow(SignalInbound, domain.InboundMessage{ExternalID: "m2", SenderID: "s1", Text: "thanks"})
	})
	h.at(40*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatInProgress || !s.CompletionDeadline.IsZero() {
			t.Errorf("an inbound message disarms the timer: %s %v", s.Status, s.CompletionDeadline)
		}
		h.update(UpdateSend, SendRequest{AgentID: "alice", Text: "anything else?"})
	})
	start(h, ChatInput{})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if reason != domain.CloseTimeout {
		t.Fatalf("close reason %q, want timeout", reason)
	}
	if got := closedAt.Sub(begin); got < 50*time.Minute || got > 51*time.Minute {
		t.Fatalf("closed %s after start, want 10 minutes after the last reply (at 40 min)", got)
	}
}

// A message arriving while the chat closes is not dropped: it starts the next chat.
func TestMessageDuringCloseStartsNextChat(t *testing.T) {
	h := newHarness(t, domain.RuleAllAgents, 0)
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil).After(time.Second)
	h.at(time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "alice"}) })
	h.at(2*time.Minute, func() {
		h.update(UpdateClose, CloseRequest{AgentID: "alice"})
	})
	// CloseChat takes a second: this message lands while the chat is closing.
	h.at(2*time.Minute+500*time.Millisecond, func() {
		if s := h.state(); s.Status != domain.ChatInProgress {
			t.Errorf("the close should still be running, status %s", s.Status)
		}
		h.env.SignalWorkflow(SignalInbound, domain.InboundMessage{ExternalID: "late", SenderID: "s1", Text: "wait!"})
	})
	start(h, ChatInput{})
	in := continuedAsNew(t, h.env.GetWorkflowError())
	if in.State != nil || len(in.Pending) != 1 || in.Pending[0].ExternalID != "late" {
		t.Fatalf("next chat input: state=%v pending=%+v", in.State, in.Pending)
	}
}

// A long chat continues as new with its whole state.
func TestContinueAsNewKeepsState(t *testing.T) {
	h := newHarness(t, domain.RuleAllAgents, 10*time.Minute)
	h.at(time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "alice"}) })
	h.at(2*time.Minute, func() { h.update(UpdateSend, SendRequest{AgentID: "alice", Text: "hello"}) })
	h.at(3*time.Minute, func() {
		h.env.SignalWorkflow(SignalInbound, domain.InboundMessage{ExternalID: "m2", SenderID: "s1", Text: "two"})
		h.env.SignalWorkflow(SignalInbound, domain.InboundMessage{ExternalID: "m3", SenderID: "s1", Text: "three"})
	})
	var chatID string
	h.at(150*time.Second, func() { chatID = h.state().ChatID })
	start(h, ChatInput{ContinueAsNewAfter: 3})
	in := continuedAsNew(t, h.env.GetWorkflowError())
	if in.State == nil || in.State.ChatID != chatID || in.State.Status != domain.ChatInProgress || in.State.AgentID != "alice" || in.State.QueueID != "q1" {
		t.Fatalf("state not carried: %+v (chat %s)", in.State, chatID)
	}
	if in.ContinueAsNewAfter != 3 || len(in.Pending) != 0 {
		t.Fatalf("input: %+v", in)
	}
}

func continuedAsNew(t *testing.T, err error) ChatInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var in ChatInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// all_agents: the chat is not routed by the dispatcher, and any agent may take it.
func TestAllAgentsChatIsNotDispatchedAndAnyAgentAccepts(t *testing.T) {
	h := newHarness(t, domain.RuleAllAgents, 0)
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
	h.at(time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatWaiting || s.AgentID != "" {
			t.Errorf("new all_agents chat: %s %q", s.Status, s.AgentID)
		}
		h.update(UpdateAccept, AcceptRequest{AgentID: "zoe"})
	})
	h.at(2*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatInProgress || s.AgentID != "zoe" {
			t.Errorf("after accept: %s %q", s.Status, s.AgentID)
		}
		h.update(UpdateClose, CloseRequest{AgentID: "zoe"})
	})
	start(h, ChatInput{})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// Routing is woken by the activities' transactions, never by a kick.
	h.env.AssertActivityNumberOfCalls(t, "KickDispatch", 0)
}

// Commands are refused before anything runs when they do not fit the chat's state.
func TestValidatorsRejectCommandsOutOfTurn(t *testing.T) {
	h := newHarness(t, domain.RuleAvailableAgent, 0)
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
	reject := func(name string, arg any, wantType string) {
		h.env.UpdateWorkflow(name, name+"-"+wantType, &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				var app *temporal.ApplicationError
				if !errors.As(err, &app) || app.Type() != wantType {
					t.Errorf("%s: rejected with %v, want type %s", name, err, wantType)
				}
			},
			OnAccept:   func() { t.Errorf("%s was accepted, want a rejection", name) },
			OnComplete: func(any, error) {},
		}, arg)
	}
	h.at(time.Second, func() {
		h.env.SignalWorkflow(SignalOffer, Offer{ChatID: h.state().ChatID, AgentID: "alice", AcceptTimeout: time.Hour})
	})
	h.at(time.Minute, func() {
		reject(UpdateAccept, AcceptRequest{AgentID: "bob"}, domain.KindConflict)           // offered to alice
		reject(UpdateSend, SendRequest{AgentID: "alice", Text: "hi"}, domain.KindConflict) // not accepted yet
		h.update(UpdateAccept, AcceptRequest{AgentID: "alice"})
	})
	h.at(2*time.Minute, func() {
		reject(UpdateSend, SendRequest{AgentID: "bob", Text: "hi"}, domain.KindForbidden) // not bob's chat
		reject(UpdateSend, SendRequest{AgentID: "alice", Text: ""}, domain.KindInvalid)   // empty text
		reject(UpdateTransfer, TransferRequest{AgentID: "alice"}, domain.KindInvalid)     // no target
		reject(UpdateTransfer, TransferRequest{AgentID: "alice", ToAgentID: "alice"}, domain.KindInvalid)
		reject(UpdateClose, CloseRequest{AgentID: "bob"}, domain.KindForbidden)
		h.update(UpdateClose, CloseRequest{AgentID: "alice"})
	})
	start(h, ChatInput{})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	h.env.AssertActivityNumberOfCalls(t, "RecordOutbound", 0)
}

// The completion timer fires, but Postgres refuses the close because the
// customer wrote after the agent's reply (the message was stored by the API,
// its notice not yet here): the chat stays open and the timer is disarmed.
func TestTimeoutCloseRefusedKeepsChatOpen(t *testing.T) {
	h := newHarness(t, domain.RuleAllAgents, 10*time.Minute)
	var attempts int
	h.env.OnActivity(conv.CloseOnTimeout, mock.Anything, mock.Anything).Return(func(context.Context, activities.ChatRef) (bool, error) {
		attempts++
		return false, nil
	})
	var reason string
	h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.CloseRequest) error {
		reason = r.Reason
		return nil
	})
	h.at(time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "alice"}) })
	h.at(2*time.Minute, func() { h.update(UpdateSend, SendRequest{AgentID: "alice", Text: "hello"}) })
	h.at(30*time.Minute, func() {
		if s := h.state(); s.Status != domain.ChatInProgress || !s.CompletionDeadline.IsZero() {
			t.Errorf("a refused timeout close keeps the chat open, timer disarmed: %s %v", s.Status, s.CompletionDeadline)
		}
		h.update(UpdateClose, CloseRequest{AgentID: "alice"})
	})
	start(h, ChatInput{})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || reason != domain.CloseByAgent {
		t.Fatalf("timeout close asked %d times (want 1), final close %q (want by agent)", attempts, reason)
	}
}

// The API's notice that the customer answered disarms the completion timer
// when Postgres confirms the customer has the last word, and not otherwise.
func TestAnsweredNoticeDisarmsTimerWhenPostgresAgrees(t *testing.T) {
	for _, waiting := range []bool{true, false} {
		h := newHarness(t, domain.RuleAllAgents, 10*time.Minute)
		h.env.OnActivity(conv.CustomerWaiting, mock.Anything, mock.Anything).Return(waiting, nil)
		h.env.OnActivity(conv.CloseOnTimeout, mock.Anything, mock.Anything).Return(true, nil)
		h.at(time.Minute, func() { h.update(UpdateAccept, AcceptRequest{AgentID: "alice"}) })
		h.at(2*time.Minute, func() { h.update(UpdateSend, SendRequest{AgentID: "alice", Text: "hello"}) })
		h.at(3*time.Minute, func() {
			h.env.SignalWorkflow(SignalNotice, Notice{ChatID: h.state().ChatID, Kind: NoticeAnswered})
		})
		h.at(4*time.Minute, func() {
			s := h.state()
			if s.CompletionDeadline.IsZero() != waiting {
				t.Errorf("customer waiting %v: deadline %v", waiting, s.CompletionDeadline)
			}
			if waiting {
				h.update(UpdateClose, CloseRequest{AgentID: "alice"})
			}
		})
		h.env.OnActivity(conv.CloseChat, mock.Anything, mock.Anything).Return(nil)
		start(h, ChatInput{})
		if err := h.env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
	}
}
