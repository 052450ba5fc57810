package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnichat/omnichat/telemetry"
)

// observeWebhook records a webhook's provider, answer and time.
func (s *server) observeWebhook(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.Metrics.Webhook(c.Param("provider"), c.Writer.Status(), time.Since(start))
}

// traceRequests starts a server span per request, named by its route, as a
// child of the caller's traceparent when there is one. The request's context
// carries it, so the Temporal calls the request makes join its trace.
func traceRequests(tp trace.TracerProvider) gin.HandlerFunc {
	tracer := tp.Tracer(telemetry.TracerName)
	prop := telemetry.Propagator()
	return func(c *gin.Context) {
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		ctx := prop.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, c.Request.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route),
				attribute.String("url.path", c.Request.URL.Path)))
		defer span.End()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}
