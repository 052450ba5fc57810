// Package app is omnichat's composition root: it builds the whole service
// (store, Temporal client, channel providers, domain services, API, worker)
// from the configuration. The binary and the test environment both use it,
// so what the tests run is what ships.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/providers"
	"github.com/omnichat/omnichat/chatcmd"
	"github.com/omnichat/omnichat/config"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/telemetry"
	omniworker "github.com/omnichat/omnichat/worker"
)

// ensureRoutingEvery is how often a worker checks that the routing workflow
// runs (it is started again if somebody ended it).
const ensureRoutingEvery = 30 * time.Second

// App is omnichat, assembled.
type App struct {
	Config    config.Config
	Logger    *slog.Logger
	Store     *models.Store
	Temporal  client.Client
	Chats     *chatcmd.Client
	Providers *channels.Registry
	Services  *service.Services
	// Metrics is the process's one metrics registry, served by MetricsHandler.
	Metrics *telemetry.Metrics
	// Tracer is the tracer provider of the process; nil when tracing is off.
	Tracer trace.TracerProvider

	ownsTemporal bool
	interceptors []interceptor.WorkerInterceptor
	// shutdown flushes and stops the metrics and tracing pipelines.
	shutdown []func(context.Context) error
}

// Option adjusts how an App is built.
type Option func(*App)

// WithTemporal uses a Temporal client the caller owns (tests share one).
func WithTemporal(tc client.Client) Option {
	return func(a *App) { a.Temporal = tc }
}

// WithWorkerInterceptors wraps the worker's workflows and activities (tests inject faults).
func WithWorkerInterceptors(is ...interceptor.WorkerInterceptor) Option {
	return func(a *App) { a.interceptors = append(a.interceptors, is...) }
}

// WithTracerProvider traces through tp instead of the OTLP exporter the
// configuration names (tests record spans in memory).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(a *App) { a.Tracer = tp }
}

// New builds omnichat from its configuration. It connects to nothing yet:
// a database or Temporal that is away is waited for when work starts.
func New(cfg config.Config, logger *slog.Logger, opts ...Option) (*App, error) {
	a := &App{Config: cfg, Logger: logger}
	for _, o := range opts {
		o(a)
	}
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.DBMaxConns > 0 {
		if err := models.SetPoolSize(db, cfg.DBMaxConns); err != nil {
			return nil, err
		}
	}
	a.Store = models.NewStore(db)
	if a.Providers, err = providers.New(cfg.TelegramAPIURL, cfg.FacebookGraphURL); err != nil {
		return nil, err
	}
	a.Metrics = telemetry.NewMetrics(prometheus.NewRegistry(), a.Providers.Names())
	if a.Tracer == nil && cfg.OTLPEndpoint != "" {
		tp, err := telemetry.NewTracerProvider(context.Background(), cfg.OTLPEndpoint, cfg.OTLPProtocol)
		if err != nil {
			return nil, err
		}
		a.Tracer = tp
		a.shutdown = append(a.shutdown, tp.Shutdown)
	}
	if a.Temporal == nil {
		if err := a.dialTemporal(); err != nil {
			return nil, err
		}
	}
	a.Chats = chatcmd.New(a.Temporal, cfg.TaskQueue)
	a.Chats.ActionStartTimeout = cfg.ActionStartTimeout
	a.Services = service.New(service.Deps{Store: a.Store, Providers: a.Providers, Runtime: a.Chats, Notifier: a.Chats, Actions: a.Chats,
		TemporalHealth: a.Chats.Health, Logger: logger, EventRetention: cfg.EventRetention,
		EventStreamsPerUser: cfg.EventStreamsPerUser, SessionTTL: cfg.SessionTTL, Metrics: a.Metrics})
	a.Metrics.GaugeFunc("event_stream_clients", "Event streams (panel tabs) this process holds open.",
		func() float64 { return float64(a.Services.Events.Streams()) })
	return a, nil
}

// dialTemporal makes the App's Temporal client, with the SDK's metrics in
// the App's registry and, when tracing is on, the tracing interceptor, which
// the workers built from the client inherit.
func (a *App) dialTemporal() error {
	sdkMetrics, stopMetrics, err := a.Metrics.TemporalMetrics(a.Logger)
	if err != nil {
		return err
	}
	a.shutdown = append(a.shutdown, stopMetrics)
	opts := client.Options{
		HostPort:       a.Config.TemporalAddress,
		Namespace:      a.Config.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(a.Logger),
		MetricsHandler: sdkMetrics,
	}
	if a.Tracer != nil {
		tracing, err := telemetry.TemporalTracing(a.Tracer)
		if err != nil {
			return fmt.Errorf("tracing interceptor for Temporal: %w", err)
		}
		opts.Interceptors = append(opts.Interceptors, tracing)
	}
	if a.Temporal, err = client.NewLazyClient(opts); err != nil {
		return fmt.Errorf("client for Temporal at %s: %w", a.Config.TemporalAddress, err)
	}
	a.ownsTemporal = true
	return nil
}

// Close ends the event streams and releases the database pool and, when the
// App made it, the Temporal client.
func (a *App) Close() {
	a.Services.Events.Close()
	if a.ownsTemporal {
		a.Temporal.Close()
	}
	a.Store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, stop := range a.shutdown {
		if err := stop(ctx); err != nil {
			a.Logger.Warn("telemetry not flushed", "error", err)
		}
	}
}

// MetricsHandler serves /metrics: every metric of the process in the
// Prometheus text format, and Go's profiles under /debug/pprof/. It is meant
// for a listener of its own, apart from the API, that only operators reach.
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Handler is the HTTP API; it starts the event streams' listener and pruning.
func (a *App) Handler() http.Handler {
	a.Services.Events.Start()
	return api.New(api.Deps{Services: a.Services, Logger: a.Logger, MaxBodyBytes: a.Config.MaxBodyBytes, MaxUploadBytes: a.Config.MaxUploadBytes,
		RateLimitPerToken: a.Config.RateLimitPerToken, WebhookRateLimit: a.Config.WebhookRateLimit,
		Metrics: a.Metrics, TracerProvider: a.Tracer})
}

// activityGroups are the worker's activities, each group with the services it uses.
func (a *App) activityGroups() []omniworker.Group {
	s := a.Services
	return []omniworker.Group{
		&activities.Conversation{Chats: s.Chats, Channels: s.Channels},
		&activities.Delivery{Chats: s.Chats, Channels: s.Channels, Metrics: a.Metrics},
		&activities.Media{Chats: s.Chats, Channels: s.Channels},
		&activities.Dispatching{Routing: s.Routing},
		&activities.Actions{Actions: s.Actions, Cases: s.Cases, Workflows: a.Chats},
	}
}

// Worker is a started Temporal worker with the routing workflow kept running.
type Worker struct {
	w    worker.Worker
	stop context.CancelFunc
	done sync.WaitGroup
}

// Stop stops the worker; running activities get the configured shutdown time.
func (w *Worker) Stop() {
	w.stop()
	w.done.Wait()
	w.w.Stop()
}

// StartWorker waits until PostgreSQL and Temporal answer (ctx ends the wait),
// starts the worker, and keeps the routing workflow of its task queue running.
func (a *App) StartWorker(ctx context.Context) (*Worker, error) {
	if err := a.waitFor(ctx, "PostgreSQL", a.Store.Ping); err != nil {
		return nil, err
	}
	if err := a.waitFor(ctx, "Temporal at "+a.Config.TemporalAddress, a.Chats.Health); err != nil {
		return nil, err
	}
	w := omniworker.New(a.Temporal, a.activityGroups(), omniworker.Options{TaskQueue: a.Config.TaskQueue,
		StickyCacheSize: a.Config.StickyCacheSize, Pollers: a.Config.WorkerPollers, StopTimeout: a.Config.ShutdownTimeout,
		Interceptors: a.interceptors})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	ectx, stop := context.WithCancel(context.Background())
	out := &Worker{w: w, stop: stop}
	out.done.Add(2)
	go func() {
		defer out.done.Done()
		a.keepRouting(ectx)
	}()
	go func() {
		defer out.done.Done()
		a.Services.Notices.Run(ectx)
	}()
	return out, nil
}

// keepRouting starts the routing workflow and checks, now and then, that it runs.
func (a *App) keepRouting(ctx context.Context) {
	tick := time.NewTicker(ensureRoutingEvery)
	defer tick.Stop()
	for {
		if err := a.Chats.EnsureRouting(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Warn("routing workflow not started; retrying", "error", err, "in", ensureRoutingEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitFor retries check with backoff until it succeeds or ctx ends, saying
// what it waits for.
func (a *App) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	for delay := 500 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		a.Logger.Warn("waiting for "+what, "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s: %w", what, ctx.Err())
		case <-time.After(delay):
		}
	}
}
