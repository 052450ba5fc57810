// Package api is omnichat's HTTP surface: messenger webhooks, the agent API
// and the admin API, with their middleware and the OpenAPI document.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/workflows"
)

// ChatCommands is what the API asks of chat workflows.
type ChatCommands interface {
	DeliverInbound(ctx context.Context, channelID, conversationID string, m workflows.InboundMessage) error
	Accept(ctx context.Context, workflowID string, req workflows.AcceptRequest) (workflows.ChatResult, error)
	Send(ctx context.Context, workflowID string, req workflows.SendRequest) (workflows.SendResult, error)
	Close(ctx context.Context, workflowID string, req workflows.CloseRequest) (workflows.ChatResult, error)
	Transfer(ctx context.Context, workflowID string, req workflows.TransferRequest) (workflows.ChatResult, error)
	Kick(ctx context.Context) error
}

// Deps are the API's dependencies.
type Deps struct {
	Store *models.Store
	// Files serves attachments' content; nil means Store.
	Files interface {
		AttachmentContent(ctx context.Context, id uuid.UUID) (string, []byte, error)
	}
	Chats          ChatCommands
	Providers      *channels.Registry
	TemporalHealth func(ctx context.Context) error
	Logger         *slog.Logger
	MaxBodyBytes   int64
	// MaxUploadBytes bounds an agent's attachment upload (multipart send).
	MaxUploadBytes    int64
	RateLimitPerToken float64
	WebhookRateLimit  float64
}

type server struct {
	Deps
	tokenLimits   limiters
	webhookLimits limiters
}

// New builds the HTTP handler.
func New(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Files == nil && d.Store != nil {
		d.Files = d.Store
	}
	s := &server{Deps: d,
		tokenLimits:   limiters{rps: d.RateLimitPerToken},
		webhookLimits: limiters{rps: d.WebhookRateLimit},
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(s.logRequests, gin.CustomRecovery(func(c *gin.Context, _ any) {
		problem(c, http.StatusInternalServerError, "internal error")
	}), s.limitBody)
	r.NoRoute(func(c *gin.Context) { problem(c, http.StatusNotFound, "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { problem(c, http.StatusMethodNotAllowed, "method not allowed on this endpoint") })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/openapi.yaml", serveOpenAPI)

	r.POST("/webhooks/:provider/:channelId", s.webhook)
	r.GET("/webhooks/:provider/:channelId", s.webhookChallenge)

	v1 := r.Group("/api/v1", s.authenticate)
	s.agentRoutes(v1)
	s.adminRoutes(v1.Group("/admin", s.requireAdmin))
	return r
}

const loggerCtxKey = "omnichat.logger"

func (s *server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Set(loggerCtxKey, s.Logger)
	c.Next()
	s.Logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
		slog.String("method", c.Request.Method), slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()), slog.Duration("took", time.Since(start)))
}

func loggerFrom(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(loggerCtxKey); ok {
		return l.(*slog.Logger)
	}
	return nil
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
	checks := gin.H{"postgres": "ok", "temporal": "ok"}
	status := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		checks["postgres"], status = err.Error(), http.StatusServiceUnavailable
	}
	if err := s.TemporalHealth(ctx); err != nil {
		checks["temporal"], status = err.Error(), http.StatusServiceUnavailable
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
