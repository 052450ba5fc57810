package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
	omniworker "github.com/omnichat/omnichat/worker"
	"github.com/omnichat/omnichat/workflows"
)

var temporalClient client.Client

func TestMain(m *testing.M) { testenv.MainWithTemporal(m, &temporalClient) }

// outage is a database that refuses every call for a while: each activity
// of the chat's own records fails, retryably, until the outage is over.
type outage struct {
	mu       sync.Mutex
	until    map[string]time.Time // by conversation: when the database answers again
	attempts map[string]int
	done     map[string]int // calls that got through
}

func (o *outage) down(conv string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts[conv]++
	if time.Now().Before(o.until[conv]) {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	o.done[conv]++
	return nil
}

// conversation stands in for activities.Conversation under the same names.
type conversation struct{ *outage }

func convOf(ctx context.Context) string {
	return activity.GetInfo(ctx).WorkflowExecution.ID
}

func (c *conversation) Ingest(ctx context.Context, r activities.IngestRequest) (activities.IngestResult, error) {
	if err := c.down(convOf(ctx) + "/ingest"); err != nil {
		return activities.IngestResult{}, err
	}
	return activities.IngestResult{Stored: true, ChatID: r.ChatID, QueueID: "q", RoutingRule: domain.RuleAvailableAgent}, nil
}

func (c *conversation) OpenGate(context.Context, activities.OpenGateRequest) (bool, error) {
	return true, nil
}

func (c *conversation) ExpireOffer(ctx context.Context, _ activities.ExpireRequest) (bool, error) {
	return true, c.down(convOf(ctx) + "/expire")
}

// A database that is away far longer than a local activity's single attempt
// (the SDK's default bound was 15 s) delays the chat's work and loses
// nothing: the acknowledged message is stored when the database answers, an
// offer expires then, and the chat's workflow never fails.
func TestDatabaseOutageDelaysChatWorkAndLosesNothing(t *testing.T) {
	const away = 20 * time.Second
	taskQueue := fmt.Sprintf("outage-%d", time.Now().UnixNano())
	o := &outage{until: map[string]time.Time{}, attempts: map[string]int{}, done: map[string]int{}}
	w := worker.New(temporalClient, taskQueue, worker.Options{})
	omniworker.RegisterWorkflows(w)
	w.RegisterActivity(&conversation{o})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx := context.Background()
	start := func(conv string) string {
		id := workflows.ChatWorkflowID("ch", conv)
		_, err := temporalClient.SignalWithStartWorkflow(ctx, id, workflows.SignalInbound,
			domain.InboundMessage{ExternalID: conv + "-1", SenderID: "s", Text: "hello"},
			client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, workflows.ChatWorkflowName,
			workflows.ChatInput{ChannelID: "ch", ConversationID: conv})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	state := func(id string) workflows.ChatState {
		var s workflows.ChatState
		v, err := temporalClient.QueryWorkflow(ctx, id, "", workflows.QueryState)
		if err == nil {
			_ = v.Get(&s)
		}
		return s
	}

	// a: the database is away when the message is to be stored.
	began := time.Now()
	o.until[workflows.ChatWorkflowID("ch", "a")+"/ingest"] = began.Add(away)
	a := start("a")
	// b: the message is stored, the chat is offered, and the database is
	// away when the offer expires.
	b := start("b")
	testenv.Eventually(t, 10*time.Second, "chat b is open", func() bool { return state(b).Status == domain.ChatWaiting })
	o.mu.Lock()
	o.until[b+"/expire"] = time.Now().Add(away)
	o.mu.Unlock()
	if err := temporalClient.SignalWorkflow(ctx, b, "", workflows.SignalOffer,
		workflows.Offer{ChatID: state(b).ChatID, AgentID: "agent", AcceptTimeout: time.Second, OfferedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 90*time.Second, "the message of a is stored once the database answers", func() bool {
		return state(a).Status == domain.ChatWaiting
	})
	if took := time.Since(began); took < away {
		t.Fatalf("chat a opened after %s, while the database was away for %s", took, away)
	}
	testenv.Eventually(t, 90*time.Second, "the offer of b expires once the database answers", func() bool {
		s := state(b)
		return s.Status == domain.ChatWaiting && s.AgentID == ""
	})
	o.mu.Lock()
	ingests, expiries := o.attempts[a+"/ingest"], o.attempts[b+"/expire"]
	stored, expired := o.done[a+"/ingest"], o.done[b+"/expire"]
	o.mu.Unlock()
	if ingests < 3 || expiries < 3 {
		t.Fatalf("attempts while the database was away: ingest %d, expiry %d; want several of each", ingests, expiries)
	}
	if stored != 1 || expired != 1 {
		t.Fatalf("the message was stored %d times and the expiry recorded %d times once the database answered; want 1 each", stored, expired)
	}
	for _, id := range []string{a, b} {
		d, err := temporalClient.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus().String(); st != "Running" {
			t.Fatalf("workflow %s is %s, want Running", id, st)
		}
	}
}
