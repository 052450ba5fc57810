// Package telemetry is omnichat's metrics and traces: the Prometheus
// registry and the metrics omnichat records in it, the Temporal SDK's metrics
// handler that writes into the same registry, and the OpenTelemetry tracer
// provider (OTLP) with the HTTP server span. The composition root builds one
// Metrics and hands it to the parts that record; a nil *Metrics records
// nothing, so parts built without one (unit tests) need no stand-in.
package telemetry

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric omnichat defines itself.
const Namespace = "omnichat"

// Outcomes of a send to a provider, the "result" label of omnichat_sends_total.
const (
	SendSent      = "sent"      // the provider took the message
	SendRefused   = "refused"   // refused for good: the message is marked failed
	SendThrottled = "throttled" // the provider asked to wait; retried after it
	SendError     = "error"     // failed this attempt; retried
)

// otherProvider labels a webhook for a provider name omnichat does not serve,
// so made-up URL segments cannot grow the label set.
const otherProvider = "other"

// latencyBuckets, in seconds, cover a fast webhook (milliseconds) to a
// provider's patience (tens of seconds).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20}

// acceptBuckets, in seconds, cover an agent who accepts at once to one who
// lets the offer (5 minutes by default) nearly run out.
var acceptBuckets = []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600, 1800}

// Metrics are omnichat's own metrics, registered in one registry.
type Metrics struct {
	registry  *prometheus.Registry
	providers []string

	webhookRequests *prometheus.CounterVec
	webhookDuration *prometheus.HistogramVec
	ingested        prometheus.Counter
	duplicates      prometheus.Counter
	outboxDepth     prometheus.Gauge
	offers          prometheus.Counter
	accepts         prometheus.Counter
	acceptLatency   prometheus.Histogram
	offerExpiries   prometheus.Counter
	sends           *prometheus.CounterVec
}

// NewMetrics registers omnichat's metrics, the Go runtime's and the
// process's in reg. providers are the provider names webhooks are labelled
// with; any other name is counted as "other".
func NewMetrics(reg *prometheus.Registry, providers []string) *Metrics {
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{registry: reg, providers: slices.Clone(providers)}
	m.webhookRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "webhook_requests_total",
		Help: "Webhook requests answered, by provider and HTTP status."}, []string{"provider", "status"})
	m.webhookDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "webhook_duration_seconds",
		Help: "Time from a webhook request's arrival to its answer, by provider.", Buckets: latencyBuckets}, []string{"provider"})
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "messages_ingested_total",
		Help: "Inbound messages stored (new or edited), each once."})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "messages_duplicate_total",
		Help: "Inbound messages found already stored (a provider's redelivery): nothing written."})
	m.outboxDepth = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "outbox_depth",
		Help: "Notices to chat workflows written but not yet delivered (0 while nothing writes an outbox)."})
	m.offers = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "offers_total",
		Help: "Chats offered to an agent by routing."})
	m.accepts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "accepts_total",
		Help: "Chats accepted by an agent."})
	m.acceptLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "accept_latency_seconds",
		Help: "Time from a chat's offer to its accept.", Buckets: acceptBuckets})
	m.offerExpiries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "offer_expiries_total",
		Help: "Offers the agent did not accept in time (the agent became Inactive)."})
	m.sends = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "sends_total",
		Help: "Attempts to send an agent's message through a provider, by provider and result (sent, refused, throttled, error)."},
		[]string{"provider", "result"})
	for _, c := range []prometheus.Collector{m.webhookRequests, m.webhookDuration, m.ingested, m.duplicates, m.outboxDepth,
		m.offers, m.accepts, m.acceptLatency, m.offerExpiries, m.sends,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Registry is where every metric of the process is registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Webhook records one answered webhook request.
func (m *Metrics) Webhook(provider string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if !slices.Contains(m.providers, provider) {
		provider = otherProvider
	}
	m.webhookRequests.WithLabelValues(provider, strconv.Itoa(status)).Inc()
	m.webhookDuration.WithLabelValues(provider).Observe(took.Seconds())
}

// Ingested records an inbound message's storing: stored once, or found stored already.
func (m *Metrics) Ingested(duplicate bool) {
	if m == nil {
		return
	}
	if duplicate {
		m.duplicates.Inc()
		return
	}
	m.ingested.Inc()
}

// SetOutboxDepth reports how many workflow notices wait in the outbox.
func (m *Metrics) SetOutboxDepth(n int) {
	if m != nil {
		m.outboxDepth.Set(float64(n))
	}
}

// Offered records n new offers.
func (m *Metrics) Offered(n int) {
	if m != nil && n > 0 {
		m.offers.Add(float64(n))
	}
}

// Accepted records an accept; offeredAt is when the chat was offered to the
// agent (zero for a chat taken without an offer: an all_agents queue).
func (m *Metrics) Accepted(offeredAt, acceptedAt time.Time) {
	if m == nil {
		return
	}
	m.accepts.Inc()
	if !offeredAt.IsZero() {
		m.acceptLatency.Observe(max(acceptedAt.Sub(offeredAt), 0).Seconds())
	}
}

// OfferExpired records an offer that ran out.
func (m *Metrics) OfferExpired() {
	if m != nil {
		m.offerExpiries.Inc()
	}
}

// Sent records one send attempt's result (SendSent, SendRefused, ...).
func (m *Metrics) Sent(provider, result string) {
	if m != nil {
		m.sends.WithLabelValues(provider, result).Inc()
	}
}

// GaugeFunc registers a gauge read from fn at each scrape.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}
