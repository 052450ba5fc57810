package telemetry

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// sdkBuckets, in seconds, for the Temporal SDK's latencies (and the chat
// workflow's timer lateness): a sticky workflow task takes milliseconds, a
// task that waited for a free worker or a late timer can take minutes.
var sdkBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// TemporalMetrics is the Temporal SDK's metrics handler for the client and
// its workers: the SDK's own metrics (temporal_*) and what workflows record
// through workflow.GetMetricsHandler, exported into the Metrics' registry.
// Shutdown releases the meter provider.
func (m *Metrics) TemporalMetrics(logger *slog.Logger) (client.MetricsHandler, func(context.Context) error, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(m.registry), otelprom.WithoutTargetInfo(), otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter for the Temporal SDK: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: sdkBuckets}})))
	// A metric the meter refuses is logged; the SDK's default would panic.
	onError := func(err error) { logger.Warn("Temporal SDK metric not recorded", "error", err) }
	h := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{Meter: provider.Meter("temporal-sdk-go"), OnError: onError})
	return sdkHandler{MetricsHandler: h, onError: onError}, provider.Shutdown, nil
}

// sdkHandler makes the SDK's counters Prometheus counters: the contrib
// handler of this SDK release records them as up-down counters, which the
// exporter turns into gauges.
type sdkHandler struct {
	temporalotel.MetricsHandler
	onError func(error)
}

// WithTags keeps the counters monotonic on the tagged handler too.
func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	inner, ok := h.MetricsHandler.WithTags(tags).(temporalotel.MetricsHandler)
	if !ok {
		return h.MetricsHandler.WithTags(tags)
	}
	return sdkHandler{MetricsHandler: inner, onError: h.onError}
}

// Counter is a monotonic counter.
func (h sdkHandler) Counter(name string) client.MetricsCounter {
	c, err := h.GetMeter().Int64Counter(name)
	if err != nil {
		h.onError(err)
		return client.MetricsNopHandler.Counter(name)
	}
	attrs := metric.WithAttributeSet(h.GetAttributes())
	return counterFunc(func(d int64) { c.Add(context.Background(), d, attrs) })
}

// Unwrap lets temporalotel.ExtractMetricsHandler find the contrib handler.
func (h sdkHandler) Unwrap() client.MetricsHandler { return h.MetricsHandler }

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }
