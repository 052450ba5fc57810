package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/app"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
	"github.com/omnichat/omnichat/workflows"
)

// While PostgreSQL is away a webhook answers 503 with Retry-After, quickly
// and with nothing written, so the provider retries; the retry that comes
// after PostgreSQL is back is stored once and routed. The agent API answers
// 503 too, and /readyz names PostgreSQL.
func TestWebhookAnswers503WhilePostgresIsAway(t *testing.T) {
	e := adminEnv(t, testenv.NewStackWith(t, temporalClient, testenv.Options{ProxyDatabase: true}))
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAvailableAgent, 0, alice))
	e.activate(alice)

	e.Database.Down()
	began := time.Now()
	r := e.inbound(ch, "conv", "m-1", "are you there?")
	took := time.Since(began)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("webhook while PostgreSQL is away: %d (Retry-After %q, %s): %s", r.Status, r.Header.Get("Retry-After"), r.Header.Get("Content-Type"), r.Body)
	}
	if took > 10*time.Second {
		t.Fatalf("webhook took %s to answer; a provider gives up after 20 s", took)
	}
	var p api.Problem
	r.Decode(t, &p)
	if p.RequestID == "" || p.RequestID != r.Header.Get("X-Request-ID") {
		t.Fatalf("problem names request %q, header says %q", p.RequestID, r.Header.Get("X-Request-ID"))
	}
	if r := e.Do("GET", "/api/v1/me", alice.Token, nil); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("agent API while PostgreSQL is away: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/readyz", "", nil); r.Status != 503 {
		t.Fatalf("readyz while PostgreSQL is away: %d %s", r.Status, r.Body)
	}

	e.Database.Up()
	testenv.Eventually(t, 20*time.Second, "the provider's retry is accepted", func() bool {
		return e.inbound(ch, "conv", "m-1", "are you there?").Status == 200
	})
	chat := e.waitOffer(alice)
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = 'm-1'`); n != 1 {
		t.Fatalf("message stored %d times, want once", n)
	}
	if chat.ContactName != "Customer conv" {
		t.Fatalf("offered chat of %q", chat.ContactName)
	}
}

// A worker started while PostgreSQL is down waits for it instead of exiting,
// then starts and runs routing.
func TestWorkerStartedWhilePostgresIsDownWaitsForIt(t *testing.T) {
	dsn, _ := testenv.NewDatabase(t)
	u, _ := url.Parse(dsn)
	db := testenv.StartProxy(t, u.Host)
	db.Down()
	cfg := testenv.Config(db.DSN(dsn), "omnichat-wait-"+time.Now().Format("150405.000000"), testenv.Options{})
	a, err := app.New(cfg, testenv.Logger(), app.WithTemporal(temporalClient))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	started := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var w *app.Worker
	go func() {
		var err error
		w, err = a.StartWorker(ctx)
		started <- err
	}()
	select {
	case err := <-started:
		t.Fatalf("the worker did not wait for PostgreSQL: %v", err)
	case <-time.After(3 * time.Second):
	}
	db.Up()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("worker start after PostgreSQL came back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not start within 30 s of PostgreSQL coming back")
	}
	defer w.Stop()
	testenv.Eventually(t, 20*time.Second, "the routing workflow runs", func() bool {
		d, err := temporalClient.DescribeWorkflowExecution(ctx, workflows.RoutingWorkflowID(cfg.TaskQueue), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus().String() == "Running"
	})
}
