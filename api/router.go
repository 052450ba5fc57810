// Package api is omnichat's HTTP surface: messenger webhooks, the agent API
// and the admin API, with their middleware and the OpenAPI document.
// Handlers bind and validate, call one service method, and map its error in
// one place (fail); they never reach the store or Temporal themselves.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/telemetry"
)

// Deps are the API's dependencies.
type Deps struct {
	Services *service.Services
	Logger   *slog.Logger
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64
	// MaxUploadBytes bounds an agent's attachment upload (multipart send).
	MaxUploadBytes    int64
	RateLimitPerToken float64
	WebhookRateLimit  float64
	// WebhookTimeout bounds a webhook's work, so a provider hears back (503
	// at worst) before it gives up on the request (Messenger: 20 s).
	WebhookTimeout time.Duration
	// EventHeartbeat is how often a quiet event stream sends a comment (0: 15 s).
	EventHeartbeat time.Duration
	// Metrics records webhook requests (nil: not recorded).
	Metrics *telemetry.Metrics
	// TracerProvider, when set, gives every request a server span (the
	// parent of what the request causes in Temporal).
	TracerProvider trace.TracerProvider
}

type server struct {
	Deps
	svc           *service.Services
	tokenLimits   limiters
	webhookLimits limiters
	signIns       signInFailures
}

// New builds the HTTP handler.
func New(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.WebhookTimeout == 0 {
		d.WebhookTimeout = 15 * time.Second
	}
	if d.EventHeartbeat == 0 {
		d.EventHeartbeat = heartbeatEvery
	}
	s := &server{Deps: d, svc: d.Services,
		tokenLimits:   limiters{rps: d.RateLimitPerToken},
		webhookLimits: limiters{rps: d.WebhookRateLimit},
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	if d.TracerProvider != nil {
		r.Use(traceRequests(d.TracerProvider))
	}
	r.Use(s.requestID, s.logRequests, gin.CustomRecoveryWithWriter(io.Discard, recovered), s.limitBody)
	r.NoRoute(func(c *gin.Context) { problem(c, http.StatusNotFound, "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { problem(c, http.StatusMethodNotAllowed, "method not allowed on this endpoint") })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/openapi.yaml", serveOpenAPI)

	r.POST("/webhooks/:provider/:channelId", s.observeWebhook, s.webhook)
	r.GET("/webhooks/:provider/:channelId", s.webhookChallenge)

	v1 := r.Group("/api/v1", s.authenticate)
	s.agentRoutes(v1)
	admin := v1.Group("/admin", requireAdmin)
	s.userRoutes(admin)
	s.roleRoutes(admin)
	s.queueRoutes(admin)
	s.channelRoutes(admin)
	s.settingRoutes(admin)
	s.actionRoutes(v1, admin)
	s.panelRoutes(r, v1, admin)
	return r
}

const (
	requestIDKey  = "omnichat.request_id"
	loggerCtxKey  = "omnichat.logger"
	requestHeader = "X-Request-ID"
)

// validRequestID is what an incoming X-Request-ID may look like to be kept.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID names every request: the caller's X-Request-ID when it is sane,
// a new one otherwise. It is answered in X-Request-ID, logged on every line
// about the request and put in every problem document.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader(requestHeader)
	if !validRequestID.MatchString(id) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(requestIDKey, id)
	c.Set(loggerCtxKey, s.Logger.With("request_id", id))
	c.Header(requestHeader, id)
	c.Next()
}

func (s *server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	loggerFrom(c).LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
		slog.String("method", c.Request.Method), slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()), slog.Duration("took", time.Since(start)))
}

// recovered answers a handler's panic with a 500 problem and logs it through
// slog, with the request's ID and the stack, like every other line about the
// request (Gin's own recovery log would bypass both).
func recovered(c *gin.Context, rec any) {
	loggerFrom(c).ErrorContext(c.Request.Context(), "panic serving request",
		"path", c.FullPath(), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
	problem(c, http.StatusInternalServerError, "internal error")
}

func loggerFrom(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(loggerCtxKey); ok {
		return l.(*slog.Logger)
	}
	return slog.Default()
}

// limitBody caps every request body; reading past the cap fails with *http.MaxBytesError.
func (s *server) limitBody(c *gin.Context) {
	limit := s.MaxBodyBytes
	if strings.HasPrefix(c.ContentType(), "multipart/form-data") && s.MaxUploadBytes > limit {
		limit = s.MaxUploadBytes + 64<<10 // the file plus its form fields
	}
	if c.Request.ContentLength > limit {
		problem(c, http.StatusRequestEntityTooLarge, "request body is too large")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	c.Next()
}

func (s *server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := gin.H{}
	status := http.StatusOK
	for name, err := range s.svc.Health.Check(ctx) {
		checks[name] = "ok"
		if err != nil {
			checks[name], status = err.Error(), http.StatusServiceUnavailable
		}
	}
	c.JSON(status, checks)
}

// maxLimiters bounds the limiter table: webhook keys come from the URL before
// any lookup, so a flood of made-up channel IDs must not grow it without end.
const maxLimiters = 10000

// limiters keeps one token bucket per key.
type limiters struct {
	rps float64
	mu  sync.Mutex
	m   map[string]*rate.Limiter
}

func (l *limiters) allow(key string) bool {
	l.mu.Lock()
	lim, ok := l.m[key]
	if !ok {
		if l.m == nil {
			l.m = map[string]*rate.Limiter{}
		}
		if len(l.m) >= maxLimiters {
			for k := range l.m { // drop an arbitrary bucket to make room
				delete(l.m, k)
				break
			}
		}
		lim = rate.NewLimiter(rate.Limit(l.rps), int(2*l.rps)+1)
		l.m[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
