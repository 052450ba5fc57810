package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnichat/omnichat/api"
)

// A request's server span is named by its route, continues the caller's
// trace from traceparent, is what the handler's context carries, and marks
// a 5xx answer as an error.
func TestServerSpanContinuesTheCallersTrace(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(api.TraceRequests(tp))
	var inHandler trace.SpanContext
	r.GET("/things/:id", func(c *gin.Context) {
		inHandler = trace.SpanContextFromContext(c.Request.Context())
		c.Status(http.StatusServiceUnavailable)
	})

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req := httptest.NewRequest(http.MethodGet, "/things/42", nil)
	req.Header.Set("traceparent", parent)
	r.ServeHTTP(httptest.NewRecorder(), req)

	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("want one span, got %d", len(ended))
	}
	s := ended[0]
	if s.Name() != "GET /things/:id" || s.SpanKind() != trace.SpanKindServer {
		t.Fatalf("span %q of kind %v", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span not a child of the caller's: trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	if inHandler.SpanID() != s.SpanContext().SpanID() {
		t.Fatal("the handler's context does not carry the server span")
	}
	if s.Status().Code != codes.Error {
		t.Fatalf("a 503 leaves the span's status %v", s.Status())
	}
	found := false
	for _, a := range s.Attributes() {
		if a == attribute.Int("http.response.status_code", 503) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no status code among %v", s.Attributes())
	}
}
