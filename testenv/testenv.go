// Package testenv starts the real parts tests run against: a Temporal dev
// server built from the pinned CLI, a fresh PostgreSQL database per stack,
// and omnichat's API and worker in process.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/omnichat/omnichat/app"
	"github.com/omnichat/omnichat/chatcmd"
	"github.com/omnichat/omnichat/config"
	"github.com/omnichat/omnichat/migrations"
	"github.com/omnichat/omnichat/models"
)

// CLIPath finds the Temporal CLI: $TEMPORAL_CLI, then PATH, then $GOPATH/bin.
func CLIPath() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("temporal CLI not found (run `make temporal` or set TEMPORAL_CLI)")
	}
	return p, nil
}

// StartTemporal starts a dev server on free ports with in-memory state.
func StartTemporal() (*testsuite.DevServer, error) {
	path, err := CLIPath()
	if err != nil {
		return nil, err
	}
	return testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
		ExistingPath:  path,
		LogLevel:      "error",
		ClientOptions: &client.Options{Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))},
	})
}

// AdminDSN is the PostgreSQL URL tests create databases through.
func AdminDSN() string {
	if v := os.Getenv("OMNICHAT_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewDatabase creates a migrated database that is dropped when the test ends.
func NewDatabase(t testing.TB) (string, *models.Store) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("connect to PostgreSQL (%s): %v", AdminDSN(), err)
	}
	name := "omnichat_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	_ = admin.Close(ctx)
	u, _ := url.Parse(AdminDSN())
	u.Path = "/" + name
	dsn := u.String()
	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, sqlDB); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	_ = sqlDB.Close()
	db, err := models.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
		if c, err := pgx.Connect(context.Background(), AdminDSN()); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	})
	return dsn, models.NewStore(db)
}

// Stack is omnichat running in process against real Postgres and Temporal,
// built by the same composition root as the binary.
type Stack struct {
	t   testing.TB
	URL string
	App *app.App
	// Store reaches the stack's database directly, for tests to inspect it.
	Store *models.Store
	// Database is the proxy omnichat reaches its database through, when
	// Options.ProxyDatabase asked for one: cut it to take the database away.
	Database  *Proxy
	Temporal  client.Client
	Chats     *chatcmd.Client
	TaskQueue string
	// MetricsURL serves the stack's /metrics, as OMNICHAT_METRICS_ADDR would.
	MetricsURL string
	worker     *app.Worker
}

// Options point a stack's providers at fake servers.
type Options struct {
	TelegramURL string
	FacebookURL string
	// ProxyDatabase puts a proxy the test can cut between omnichat and PostgreSQL.
	ProxyDatabase bool
	// ActionStartTimeout overrides how long an action's workflow has to start (0: 30 s).
	ActionStartTimeout time.Duration
	// WorkerInterceptors wrap the worker's workflows and activities.
	WorkerInterceptors []interceptor.WorkerInterceptor
	// OwnTemporalClient: the stack dials the dev server with a client of its
	// own, as the binary does (with the SDK's metrics and, given a
	// TracerProvider, tracing), instead of sharing the test binary's client.
	OwnTemporalClient bool
	// TracerProvider traces the stack (with OwnTemporalClient, Temporal too).
	TracerProvider trace.TracerProvider
}

// NewStack starts API and worker on their own database and task queue, so
// stacks sharing one dev server never see each other's work.
func NewStack(t testing.TB, tc client.Client) *Stack {
	return NewStackWith(t, tc, Options{})
}

// Config is the configuration of a test stack on a database and task queue.
func Config(dsn, taskQueue string, opts Options) config.Config {
	if opts.TelegramURL == "" {
		opts.TelegramURL = "http://127.0.0.1:1"
	}
	if opts.FacebookURL == "" {
		opts.FacebookURL = "http://127.0.0.1:1/v21.0"
	}
	return config.Config{DatabaseURL: dsn, TaskQueue: taskQueue, TemporalNamespace: "default",
		TelegramAPIURL: opts.TelegramURL, FacebookGraphURL: opts.FacebookURL,
		MaxBodyBytes: 64 << 10, MaxUploadBytes: 256 << 10, RateLimitPerToken: 1000, WebhookRateLimit: 5000,
		ShutdownTimeout: 5 * time.Second, ActionStartTimeout: cmp.Or(opts.ActionStartTimeout, 30*time.Second)}
}

// Logger is the tests' logger: silent unless OMNICHAT_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("OMNICHAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// NewStackWith is NewStack with providers pointed at the given fakes.
func NewStackWith(t testing.TB, tc client.Client, opts Options) *Stack {
	t.Helper()
	dsn, store := NewDatabase(t)
	var proxy *Proxy
	if opts.ProxyDatabase {
		u, _ := url.Parse(dsn)
		proxy = StartProxy(t, u.Host)
		dsn = proxy.DSN(dsn)
	}
	taskQueue := "omnichat-test-" + randomHex(4)
	cfg := Config(dsn, taskQueue, opts)
	appOpts := []app.Option{app.WithWorkerInterceptors(opts.WorkerInterceptors...)}
	if opts.OwnTemporalClient {
		cfg.TemporalAddress = TemporalAddress
	} else {
		appOpts = append(appOpts, app.WithTemporal(tc))
	}
	if opts.TracerProvider != nil {
		appOpts = append(appOpts, app.WithTracerProvider(opts.TracerProvider))
	}
	a, err := app.New(cfg, Logger(), appOpts...)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{t: t, App: a, Store: store, Database: proxy, Temporal: a.Temporal, Chats: a.Chats, TaskQueue: taskQueue}
	s.StartWorker()
	srv := httptest.NewServer(a.Handler())
	s.URL = srv.URL
	metrics := httptest.NewServer(a.MetricsHandler())
	s.MetricsURL = metrics.URL + "/metrics"
	t.Cleanup(func() {
		a.Services.Events.Close() // ends open event streams, which srv.Close waits for
		srv.Close()
		metrics.Close()
		s.StopWorker()
		a.Close()
	})
	return s
}

// StartWorker starts a worker on the stack's task queue.
func (s *Stack) StartWorker() {
	s.t.Helper()
	if s.worker != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := s.App.StartWorker(ctx)
	if err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	s.worker = w
}

// StopWorker stops the worker, as a crash or a deploy would.
func (s *Stack) StopWorker() {
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request; body may be nil, []byte (sent raw) or a value sent as JSON.
func (s *Stack) Do(method, path, token string, body any, headers ...string) Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TemporalAddress is the host:port of the dev server MainWithTemporal
// started, for programs a test runs as processes of their own.
var TemporalAddress string

// MainWithTemporal runs a test binary's tests with a Temporal dev server of
// its own, whose client it puts in tc; call it from TestMain.
func MainWithTemporal(m *testing.M, tc *client.Client) {
	srv, err := StartTemporal()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Temporal dev server:", err)
		os.Exit(1)
	}
	*tc = srv.Client()
	TemporalAddress = srv.FrontendHostPort()
	code := m.Run()
	_ = srv.Stop()
	os.Exit(code)
}
