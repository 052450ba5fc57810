package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// TracerName names the tracer of omnichat's own spans (the HTTP server spans).
const TracerName = "github.com/omnichat/omnichat"

// Propagator carries a trace across HTTP (traceparent, baggage); the
// Temporal interceptor uses the same formats in workflow headers.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// OTLP protocols the exporter speaks (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// NewTracerProvider exports spans in batches over OTLP to endpoint, a URL
// such as http://collector:4318 (http/protobuf) or http://collector:4317
// (grpc). The service is named by OTEL_SERVICE_NAME, "omnichat" by default;
// OTEL_RESOURCE_ATTRIBUTES adds to it.
func NewTracerProvider(ctx context.Context, endpoint, protocol string) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP endpoint %q must be an http:// or https:// URL", endpoint)
	}
	var exporter sdktrace.SpanExporter
	switch protocol {
	case ProtocolHTTP:
		// The endpoint is the collector's base URL; traces go to /v1/traces under it.
		exporter, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	case ProtocolGRPC:
		exporter, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	default:
		return nil, fmt.Errorf("OTLP protocol %q: want %s or %s", protocol, ProtocolHTTP, ProtocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := os.Getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "omnichat"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, err
	}
	if fromEnv, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, fromEnv); err == nil {
			res = merged
		}
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// TemporalTracing is the Temporal SDK's tracing interceptor on tp: set on
// the client, it also wraps the workers built from it, so a signal sent
// under an HTTP request's span, the workflow task it causes and the
// activities it runs share one trace.
func TemporalTracing(tp trace.TracerProvider) (interceptor.Interceptor, error) {
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("temporal-sdk-go"),
		TextMapPropagator: Propagator(),
	})
}
