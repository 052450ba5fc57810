package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// A webhook path's provider segment is the caller's to choose: names
// omnichat does not serve share one label value, so the series stay bounded.
func TestWebhookProviderLabelIsBounded(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), []string{"api", "telegram"})
	m.Webhook("telegram", 200, 5*time.Millisecond)
	for _, made := range []string{"x1", "x2", "x3"} {
		m.Webhook(made, 404, time.Millisecond)
	}
	got := map[string]float64{}
	for _, s := range gather(t, m)["omnichat_webhook_requests_total"].GetMetric() {
		labels := ""
		for _, l := range s.GetLabel() {
			labels += l.GetName() + "=" + l.GetValue() + " "
		}
		got[labels] = s.GetCounter().GetValue()
	}
	want := map[string]float64{"provider=telegram status=200 ": 1, "provider=other status=404 ": 3}
	if len(got) != len(want) || got["provider=telegram status=200 "] != 1 || got["provider=other status=404 "] != 3 {
		t.Fatalf("series %v, want %v", got, want)
	}
}

// Parts built without metrics (a nil *Metrics) record nothing and do not fail.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Webhook("api", 200, time.Millisecond)
	m.Ingested(false)
	m.Offered(3)
	m.Accepted(time.Now(), time.Now())
	m.OfferExpired()
	m.Sent("api", SendSent)
	m.SetOutboxDepth(4)
}

// The accept latency runs from the offer to the accept; an accept without
// an offer is counted without a latency.
func TestAcceptLatency(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), nil)
	at := time.Now()
	m.Accepted(at.Add(-90*time.Second), at)
	m.Accepted(time.Time{}, at)
	fams := gather(t, m)
	if v := fams["omnichat_accepts_total"].GetMetric()[0].GetCounter().GetValue(); v != 2 {
		t.Fatalf("accepts %v, want 2", v)
	}
	h := fams["omnichat_accept_latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 90 {
		t.Fatalf("latency count %d sum %v, want 1 and 90", h.GetSampleCount(), h.GetSampleSum())
	}
}

// The SDK's counters are Prometheus counters (the contrib handler alone
// makes them gauges), its timers histograms in seconds, in the same registry.
func TestTemporalMetricsShareTheRegistry(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), nil)
	h, stop, err := m.TemporalMetrics(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop(context.Background()) }()
	tagged := h.WithTags(map[string]string{"task_queue": "q"})
	tagged.Counter("temporal_request").Inc(2)
	tagged.Timer("omnichat_timer_lateness").Record(1500 * time.Millisecond)
	tagged.Gauge("temporal_num_pollers").Update(3)
	fams := gather(t, m)
	c := fams["temporal_request_total"]
	if c.GetType() != dto.MetricType_COUNTER || len(c.GetMetric()) != 1 || c.GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Fatalf("temporal_request_total: %v", c)
	}
	hist := fams["omnichat_timer_lateness_seconds"]
	if hist.GetType() != dto.MetricType_HISTOGRAM || len(hist.GetMetric()) != 1 || hist.GetMetric()[0].GetHistogram().GetSampleSum() != 1.5 {
		t.Fatalf("omnichat_timer_lateness_seconds: %v", hist)
	}
	if g := fams["temporal_num_pollers"]; g.GetType() != dto.MetricType_GAUGE || len(g.GetMetric()) != 1 || g.GetMetric()[0].GetGauge().GetValue() != 3 {
		t.Fatalf("temporal_num_pollers: %v", g)
	}
	if _, ok := fams["omnichat_webhook_requests_total"]; ok {
		t.Fatal("a vector with no series yet is not exported")
	}
}
