package e2e

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
)

// scrape reads the stack's /metrics over HTTP, as Prometheus would.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// metricValue sums the samples of a family whose labels include the given
// pairs: a counter's or gauge's value, a histogram's count.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// A chat's whole life, driven through HTTP, moves the counters on /metrics:
// webhooks, ingest and a redelivery, an offer, an accept with its latency,
// a reply sent, an offer that expires, both timers' lateness, an event
// stream open and closed, and the Temporal SDK's own worker metrics.
func TestMetricsMoveThroughALifecycle(t *testing.T) {
	e := adminEnv(t, testenv.NewStackWith(t, temporalClient, testenv.Options{OwnTemporalClient: true}))
	before := scrape(t, e.MetricsURL)
	if v, _ := metricValue(before, "omnichat_accepts_total"); v != 0 {
		t.Fatalf("a new stack has counted %v accepts", v)
	}
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAvailableAgent, 0.05, alice) // completion after 3 s
	ch := e.channel(q)
	e.activate(alice)

	bad := inboundBody("conv-x", "x-1", "forged")
	e.must(401, e.Do("POST", "/webhooks/api/"+ch, "", bad, apichannel.SignatureHeader, apichannel.Sign("wrong-secret-wrong-secret", bad)), "forged webhook")
	e.must(404, e.Do("POST", "/webhooks/made-up/"+ch, "", bad), "webhook of no provider")
	e.must(200, e.inbound(ch, "conv-1", "m-1", "Hello"), "inbound")
	e.must(200, e.inbound(ch, "conv-1", "m-1", "Hello"), "the provider redelivers the message")
	offered := e.waitOffer(alice)
	e.must(200, e.Do("POST", "/api/v1/chats/"+offered.ID.String()+"/accept", alice.Token, nil), "accept")
	e.must(201, e.Do("POST", "/api/v1/chats/"+offered.ID.String()+"/messages", alice.Token, map[string]any{"text": "Hi"}), "send")
	testenv.Eventually(t, 15*time.Second, "the reply reaches the outbound URL", func() bool { return len(e.out.got()) == 1 })

	// A second conversation is offered to alice, who lets the offer expire.
	e.setting("OmniChatOperatorAcceptChatTimeout", "0.05")
	e.must(200, e.inbound(ch, "conv-2", "n-1", "Anyone?"), "inbound conv-2")
	testenv.Eventually(t, 30*time.Second, "the second offer expires", func() bool {
		return e.count(`SELECT count(*) FROM chats WHERE conversation_id = 'conv-2' AND status = 'waiting' AND agent_id IS NULL`) == 1 &&
			e.count(`SELECT count(*) FROM users WHERE id = ? AND status = 'inactive'`, alice.ID) == 1
	})
	testenv.Eventually(t, 20*time.Second, "the completion timer closes the first chat", func() bool {
		return e.chat(alice, offered.ID.String()).Status == domain.ChatClosed
	})

	// An open event stream is counted while it is open.
	sctx, closeStream := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, e.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open the event stream: %v %v", resp, err)
	}
	testenv.Eventually(t, 10*time.Second, "the open stream is counted", func() bool {
		v, _ := metricValue(scrape(t, e.MetricsURL), "omnichat_event_stream_clients")
		return v == 1
	})
	closeStream()
	_ = resp.Body.Close()
	testenv.Eventually(t, 10*time.Second, "the closed stream is no longer counted", func() bool {
		v, _ := metricValue(scrape(t, e.MetricsURL), "omnichat_event_stream_clients")
		return v == 0
	})

	var got map[string]*dto.MetricFamily
	want := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"omnichat_webhook_requests_total", []string{"provider", "api", "status", "200"}, 3},
		{"omnichat_webhook_requests_total", []string{"provider", "api", "status", "401"}, 1},
		{"omnichat_webhook_requests_total", []string{"provider", "other", "status", "404"}, 1},
		{"omnichat_webhook_duration_seconds", []string{"provider", "api"}, 4},
		{"omnichat_messages_ingested_total", nil, 2},
		{"omnichat_messages_duplicate_total", nil, 1},
		{"omnichat_offers_total", nil, 2},
		{"omnichat_accepts_total", nil, 1},
		{"omnichat_accept_latency_seconds", nil, 1},
		{"omnichat_offer_expiries_total", nil, 1},
		{"omnichat_sends_total", []string{"provider", "api", "result", "sent"}, 1},
		{"omnichat_timer_lateness_seconds", []string{"timer", "accept"}, 1},
		{"omnichat_timer_lateness_seconds", []string{"timer", "completion"}, 1},
		// The Temporal SDK's own metrics, from the client and the worker.
		{"temporal_request_total", nil, 1},
		{"temporal_workflow_task_execution_latency_seconds", nil, 1},
		{"temporal_activity_execution_latency_seconds", nil, 1},
		{"temporal_worker_task_slots_available", nil, 0},
	}
	// The SDK's metrics of the last tasks land when those tasks end: wait for them.
	testenv.Eventually(t, 15*time.Second, "every metric moved", func() bool {
		got = scrape(t, e.MetricsURL)
		for _, w := range want {
			if v, ok := metricValue(got, w.name, w.labels...); !ok || v < w.min {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		v, _ := metricValue(got, w.name, w.labels...)
		t.Logf("%s%v = %v", w.name, w.labels, v)
	}
	for _, m := range got["omnichat_timer_lateness_seconds"].GetMetric() {
		t.Logf("timer lateness %v: %d timers, %.3f s in all", m.GetLabel(), m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
	}
	if v, _ := metricValue(got, "omnichat_accepts_total"); v != 1 {
		t.Fatalf("one accept, counted %v times", v)
	}
	if _, ok := metricValue(got, "omnichat_outbox_depth"); !ok {
		t.Fatal("omnichat_outbox_depth is not exported")
	}
}

// One webhook's trace holds the HTTP server span, the signal-with-start the
// API sent, the workflow run it caused and the activities that run ran.
func TestWebhookTraceSpansAPIAndTemporal(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := adminEnv(t, testenv.NewStackWith(t, temporalClient, testenv.Options{OwnTemporalClient: true, TracerProvider: tp}))
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAvailableAgent, 0, alice))
	e.activate(alice)

	e.must(200, e.inbound(ch, "conv-t", "t-1", "Trace me"), "inbound")
	e.waitOffer(alice)

	var webhook trace.SpanContext
	for _, s := range spans.Ended() {
		if s.Name() == "POST /webhooks/:provider/:channelId" && s.SpanKind() == trace.SpanKindServer {
			webhook = s.SpanContext()
		}
	}
	if !webhook.IsValid() {
		t.Fatalf("no server span for the webhook among %v", spanNames(spans.Ended(), trace.TraceID{}))
	}
	// RunWorkflow lasts as long as the chat is open: it is started, not ended.
	want := []string{"POST /webhooks/:provider/:channelId", "SignalWithStartWorkflow:ChatWorkflow", "RunWorkflow:ChatWorkflow",
		"HandleSignal:inbound", "StartActivity:Ingest", "RunActivity:Ingest"}
	started := func() []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans.Started() {
			out = append(out, s)
		}
		return out
	}
	complete := func() bool {
		names := spanNames(started(), webhook.TraceID())
		for _, w := range want {
			if !slices.Contains(names, w) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(15 * time.Second); !complete(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook's trace lacks some of %v: it holds %v; all spans: %v", want,
				spanNames(started(), webhook.TraceID()), spanNames(started(), trace.TraceID{}))
		}
	}
	t.Logf("the webhook's trace: %s", strings.Join(spanNames(started(), webhook.TraceID()), ", "))
	for _, s := range started() {
		if s.Name() == "SignalWithStartWorkflow:ChatWorkflow" && s.SpanContext().TraceID() == webhook.TraceID() && s.Parent().SpanID() != webhook.SpanID() {
			t.Fatalf("the signal-with-start span's parent is %s, not the webhook's server span %s", s.Parent().SpanID(), webhook.SpanID())
		}
	}
}

// spanNames lists the names of the spans of one trace (any trace for the zero ID).
func spanNames(spans []sdktrace.ReadOnlySpan, traceID trace.TraceID) []string {
	var out []string
	for _, s := range spans {
		if !traceID.IsValid() || s.SpanContext().TraceID() == traceID {
			out = append(out, s.Name())
		}
	}
	sort.Strings(out)
	return out
}
