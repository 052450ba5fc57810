package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

// provider is a channel provider whose sends and downloads answer as the test says.
type provider struct {
	mu       sync.Mutex
	send     func() (channels.SendResult, error)
	download func() (channels.Downloaded, error)
	sends    int
	// hang makes every send wait until its context ends, as a provider
	// that never answers.
	hang bool
}

func (p *provider) Name() string                                             { return "scripted" }
func (p *provider) Validate(channels.Config) error                           { return nil }
func (p *provider) Register(context.Context, channels.Config) error          { return nil }
func (p *provider) Unregister(context.Context, channels.Config) error        { return nil }
func (p *provider) VerifyWebhook(channels.Config, http.Header, []byte) error { return nil }
func (p *provider) ParseWebhook(channels.Config, []byte) ([]domain.InboundMessage, error) {
	return nil, nil
}
func (p *provider) Profile(context.Context, channels.Config, string) (channels.Profile, error) {
	return channels.Profile{}, channels.ErrNotSupported
}
func (p *provider) Send(ctx context.Context, _ channels.Config, _ channels.Outbound) (channels.SendResult, error) {
	if p.hang {
		<-ctx.Done()
		return channels.SendResult{}, fmt.Errorf("post reply: %w", ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sends++
	return p.send()
}
func (p *provider) Attachment(context.Context, channels.Config, domain.AttachmentRef) (channels.Downloaded, error) {
	return p.download()
}

// fixture is a chat with an agent's reply waiting to be sent and an inbound
// file waiting to be downloaded, over the scripted provider.
type fixture struct {
	t          *testing.T
	store      *models.Store
	p          *provider
	env        *testsuite.TestActivityEnvironment
	delivery   *activities.Delivery
	media      *activities.Media
	message    uuid.UUID
	attachment uuid.UUID
}

func newFixture(t *testing.T) *fixture {
	_, store := testenv.NewDatabase(t)
	ctx := context.Background()
	p := &provider{}
	svc := service.New(service.Deps{Store: store, Providers: channels.NewRegistry(p)})
	q := &models.Queue{Name: "Q", RoutingRule: domain.RuleAllAgents}
	must(t, store.CreateQueue(ctx, q))
	ch := &models.Channel{Provider: p.Name(), Name: "C", Active: true, QueueID: q.ID, Secret: "s"}
	must(t, store.CreateChannel(ctx, ch))
	agent := &models.User{Name: "Alice", Email: "alice@example.com"}
	must(t, store.CreateUser(ctx, agent))
	chatID := uuid.New()
	res, err := svc.Chats.Ingest(ctx, models.IngestInput{ChatID: chatID, OpenChat: true, WorkflowID: "wf", ChannelID: ch.ID,
		Message: domain.InboundMessage{ConversationID: "conv", ExternalID: "m1", SenderID: "cust", Text: "see attached",
			Attachments: []domain.AttachmentRef{{Kind: domain.KindDocument, RemoteID: "file-1", Name: "a.pdf"}}}})
	must(t, err)
	msg, _, err := svc.Chats.RecordOutbound(ctx, service.OutboundInput{MessageID: uuid.New(), ChatID: chatID, AgentID: agent.ID, Text: "hello"})
	must(t, err)
	var suite testsuite.WorkflowTestSuite
	f := &fixture{t: t, store: store, p: p, env: suite.NewTestActivityEnvironment(),
		delivery: &activities.Delivery{Chats: svc.Chats, Channels: svc.Channels},
		media:    &activities.Media{Chats: svc.Chats, Channels: svc.Channels},
		message:  msg.ID, attachment: res.Attachments[0]}
	f.delivery.Register(f.env)
	f.media.Register(f.env)
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) deliver() error {
	_, err := f.env.ExecuteActivity(f.delivery.Deliver, activities.DeliverRequest{MessageID: f.message.String()})
	return err
}

func (f *fixture) messageRow() *models.Message {
	m, err := f.store.GetMessage(context.Background(), f.message)
	must(f.t, err)
	return m
}

func permanentFailure(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == domain.KindPermanentSend && app.NonRetryable() &&
		app.Category() != temporal.ApplicationErrorCategoryBenign
}

// passingFailure: retried, and benign, so the SDK logs the attempt at debug
// level (omnichat logs it once as a warning).
func passingFailure(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && !app.NonRetryable() && app.Category() == temporal.ApplicationErrorCategoryBenign
}

// A provider that keeps failing a reply is tried eight times; the eighth
// failure marks the message failed with the provider's error, for the agent.
func TestDeliverMarksFailedAfterTheProvidersEighthFailure(t *testing.T) {
	f := newFixture(t)
	f.p.send = func() (channels.SendResult, error) { return channels.SendResult{}, errors.New("502 Bad Gateway") }
	for attempt := 1; attempt < 8; attempt++ {
		err := f.deliver()
		if !passingFailure(err) {
			t.Fatalf("attempt %d: %v; want a retryable benign failure", attempt, err)
		}
		if m := f.messageRow(); m.Status != domain.MsgSending {
			t.Fatalf("after %d failures the message is %s, want sending", attempt, m.Status)
		}
	}
	if err := f.deliver(); !permanentFailure(err) {
		t.Fatalf("eighth failure: %v; want a permanent failure", err)
	}
	m := f.messageRow()
	if m.Status != domain.MsgFailed || m.FailReason == nil || !strings.Contains(*m.FailReason, "not delivered after 8 attempts: 502 Bad Gateway") {
		t.Fatalf("message after eight failures: %s %v", m.Status, m.FailReason)
	}
}

// A provider that never answers is cut after SendTimeout and counted as a
// failure, so the reply is failed after the eighth such attempt instead of
// each attempt timing out uncounted and being retried for ever.
func TestDeliverCutsAProviderThatNeverAnswers(t *testing.T) {
	f := newFixture(t)
	f.p.hang = true
	f.delivery.SendTimeout = 200 * time.Millisecond
	for attempt := 1; attempt <= 8; attempt++ {
		began := time.Now()
		err := f.deliver()
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("attempt %d took %s; the provider call is cut after 200 ms", attempt, took)
		}
		if attempt < 8 && !passingFailure(err) {
			t.Fatalf("attempt %d: %v; want a retryable benign failure", attempt, err)
		}
		if attempt == 8 && !permanentFailure(err) {
			t.Fatalf("eighth attempt: %v; want a permanent failure", err)
		}
	}
	m := f.messageRow()
	if m.Status != domain.MsgFailed || m.FailReason == nil || !strings.Contains(*m.FailReason, "deadline exceeded") {
		t.Fatalf("message after eight unanswered calls: %s %v", m.Status, m.FailReason)
	}
}

// Throttling is the provider asking to wait, not a failure: it never uses up attempts.
func TestDeliverThrottlingIsNotAFailure(t *testing.T) {
	f := newFixture(t)
	f.p.send = func() (channels.SendResult, error) {
		return channels.SendResult{}, &channels.RetryAfterError{After: time.Second, Reason: "Too Many Requests"}
	}
	for i := 0; i < 12; i++ {
		if err := f.deliver(); !passingFailure(err) {
			t.Fatalf("throttled attempt %d: %v; want a retryable benign failure", i, err)
		}
	}
	if m := f.messageRow(); m.Status != domain.MsgSending {
		t.Fatalf("after twelve throttled attempts the message is %s, want sending", m.Status)
	}
	f.p.send = func() (channels.SendResult, error) { return channels.SendResult{ExternalID: "x-1"}, nil }
	must(t, f.deliver())
	if m := f.messageRow(); m.Status != domain.MsgSent || *m.ExternalID != "x-1" {
		t.Fatalf("after the provider took it: %s %v", m.Status, m.ExternalID)
	}
}

// An attempt that follows one whose send the provider accepted (but which
// could not record it) records it without sending again.
func TestDeliverNeverSendsAcceptedMessageAgain(t *testing.T) {
	f := newFixture(t)
	f.p.send = func() (channels.SendResult, error) { return channels.SendResult{ExternalID: "again"}, nil }
	f.env.SetHeartbeatDetails(struct {
		ExternalID string
		Pause      time.Duration
	}{ExternalID: "x-42", Pause: time.Second})
	must(t, f.deliver())
	if f.p.sends != 0 {
		t.Fatalf("the provider was asked %d times to send a message it had accepted", f.p.sends)
	}
	if m := f.messageRow(); m.Status != domain.MsgSent || m.ExternalID == nil || *m.ExternalID != "x-42" {
		t.Fatalf("message: %s %v; want sent as x-42", m.Status, m.ExternalID)
	}
}

func (f *fixture) fetch() error {
	_, err := f.env.ExecuteActivity(f.media.FetchAttachment, activities.FetchRequest{AttachmentID: f.attachment.String()})
	return err
}

func (f *fixture) attachmentRow() *models.Attachment {
	a, err := f.store.GetAttachment(context.Background(), f.attachment)
	must(f.t, err)
	return a
}

// A download the provider keeps failing is given up after five failures and
// marked failed with the reason; the chat's message stays.
func TestFetchAttachmentMarksFailedWhenOutOfAttempts(t *testing.T) {
	f := newFixture(t)
	f.p.download = func() (channels.Downloaded, error) {
		return channels.Downloaded{}, errors.New("read: connection reset by peer")
	}
	for attempt := 1; attempt < 5; attempt++ {
		if err := f.fetch(); err == nil {
			t.Fatalf("failed download %d was not retried", attempt)
		}
		if a := f.attachmentRow(); a.Status != domain.AttachmentPending {
			t.Fatalf("after %d failures the attachment is %s", attempt, a.Status)
		}
	}
	must(t, f.fetch())
	a := f.attachmentRow()
	if a.Status != domain.AttachmentFailed || a.FailReason == nil || !strings.Contains(*a.FailReason, "not downloaded after 5 attempts") {
		t.Fatalf("attachment after five failures: %s %v", a.Status, a.FailReason)
	}
}

// A refusal for good (too large, a forbidden host) is recorded at once.
func TestFetchAttachmentRecordsARefusalAtOnce(t *testing.T) {
	f := newFixture(t)
	f.p.download = func() (channels.Downloaded, error) {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "attachment refused: 31457280 bytes: file is larger than the limit"}
	}
	must(t, f.fetch())
	if a := f.attachmentRow(); a.Status != domain.AttachmentFailed || !strings.Contains(*a.FailReason, "larger than the limit") {
		t.Fatalf("attachment: %s %v", a.Status, a.FailReason)
	}
}

// A worker's orderly stop ends the dispatcher's shift with an error Temporal
// retries on another worker, marked benign so the stop logs no error.
func TestDispatcherShiftEndsBenignlyWhenItsWorkerStops(t *testing.T) {
	_, store := testenv.NewDatabase(t)
	svc := service.New(service.Deps{Store: store, Providers: channels.NewRegistry()})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	stop := make(chan struct{})
	env.SetWorkerStopChannel(stop)
	(&activities.Dispatching{Routing: svc.Routing}).Register(env)
	close(stop)
	_, err := env.ExecuteActivity((&activities.Dispatching{}).RunDispatcher)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("shift ended with %v, want an application error", err)
	}
	if app.Category() != temporal.ApplicationErrorCategoryBenign || app.NonRetryable() || app.Type() != "WorkerStopping" {
		t.Fatalf("shift ended with %q (type %q, category %v, non-retryable %v), want a retryable benign WorkerStopping",
			app.Error(), app.Type(), app.Category(), app.NonRetryable())
	}
}
