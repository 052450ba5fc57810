// Package config loads omnichat's typed configuration from the environment, once.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting omnichat reads from the environment.
type Config struct {
	HTTPAddr          string
	DatabaseURL       string
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
	LogLevel          slog.Level
	LogFormat         string
	MaxBodyBytes      int64
	MaxUploadBytes    int64
	TelegramAPIURL    string
	FacebookGraphURL  string
	RateLimitPerToken float64
	WebhookRateLimit  float64
	StickyCacheSize   int
	DBMaxConns        int
	WorkerPollers     int
	ShutdownTimeout   time.Duration
	// ActionStartTimeout is how long a chat action's workflow has to be
	// picked up by a worker before its run is failed.
	ActionStartTimeout time.Duration
	// The event stream and the panel's sessions.
	EventRetention      time.Duration
	EventStreamsPerUser int
	SessionTTL          time.Duration
	// MetricsAddr is where /metrics listens, apart from the API; empty: off.
	MetricsAddr string
	// OTLPEndpoint is the collector traces are exported to; empty: tracing off.
	OTLPEndpoint string
	OTLPProtocol string
}

// Var documents one environment variable; the README table and --help come from this list.
type Var struct {
	Name, Default, Description string
}

// Vars lists the environment variables omnichat reads.
var Vars = []Var{
	{"OMNICHAT_HTTP_ADDR", ":8080", "Address the API listens on."},
	{"OMNICHAT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omnichat?sslmode=disable", "PostgreSQL connection URL. `migrate` creates the database if it is missing."},
	{"OMNICHAT_TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port."},
	{"OMNICHAT_TEMPORAL_NAMESPACE", "default", "Temporal namespace."},
	{"OMNICHAT_TASK_QUEUE", "omnichat", "Temporal task queue of the chat workflows and their activities."},
	{"OMNICHAT_LOG_LEVEL", "info", "debug, info, warn or error."},
	{"OMNICHAT_LOG_FORMAT", "text", "text or json."},
	{"OMNICHAT_MAX_BODY_BYTES", "1048576", "Largest request body accepted, in bytes; larger bodies get 413."},
	{"OMNICHAT_MAX_UPLOAD_BYTES", "20971520", "Largest file an agent can send (multipart), in bytes."},
	{"OMNICHAT_TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL (a local fake in tests)."},
	{"OMNICHAT_FACEBOOK_GRAPH_URL", "https://graph.facebook.com/v21.0", "Facebook Graph API base URL, with its version (a local fake in tests)."},
	{"OMNICHAT_RATE_LIMIT", "50", "Requests per second allowed per API token (burst twice that); over it, 429."},
	{"OMNICHAT_WEBHOOK_RATE_LIMIT", "500", "Webhook requests per second allowed per channel, checked before any database or Temporal work."},
	{"OMNICHAT_DB_MAX_CONNS", "40", "Most PostgreSQL connections one process opens (API and worker together in `all`). A new conversation's webhook holds one while Temporal records its signal, so this bounds how many new conversations are taken in at once; keep the sum over all processes below the server's max_connections. Connections stay open while idle for up to 5 minutes (reopening them under load costs PostgreSQL a backend start each)."},
	{"OMNICHAT_STICKY_CACHE_SIZE", "4096", "Chat workflows a worker keeps cached between tasks; beyond it the least recently used are evicted (replayed from history at their next task). About 70 KiB each (bench soak), so the default keeps a worker near 330 MiB however many chats are open."},
	{"OMNICHAT_WORKER_POLLERS", "8", "Concurrent pollers the worker runs for workflow tasks, and as many for activity tasks."},
	{"OMNICHAT_SHUTDOWN_TIMEOUT", "20s", "How long API and worker wait for work in flight on shutdown."},
	{"OMNICHAT_ACTION_START_TIMEOUT", "1m", "How long a chat action's workflow has to be picked up by a worker; a run whose workflow no worker serves is then failed (timed_out)."},
	{"OMNICHAT_EVENT_RETENTION", "24h", "How long the event log keeps events; a client resuming from an older event ID gets one `resync` event."},
	{"OMNICHAT_EVENT_STREAMS_PER_USER", "8", "Event streams (browser tabs) one user may hold open per API process; over it, 429."},
	{"OMNICHAT_SESSION_TTL", "12h", "How long a web panel sign-in lasts."},
	{"OMNICHAT_METRICS_ADDR", "", "Address `/metrics` (Prometheus text format) and Go's profiles (`/debug/pprof/`) listen on, apart from the API, in `serve`, `worker` and `all`; keep it reachable by operators only; empty: no such listener."},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OpenTelemetry collector URL traces are exported to (`http://host:4318` for http/protobuf, `http://host:4317` for grpc); empty: tracing off. `OTEL_SERVICE_NAME` (default `omnichat`) and `OTEL_RESOURCE_ATTRIBUTES` apply."},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTLP protocol of the trace exporter: `http/protobuf` or `grpc`."},
	{EnvFileVar, ".env", "File of KEY=VALUE settings read besides the environment, which wins; the default is skipped when missing, a named file must exist."},
}

// Effective lists every variable with the value omnichat uses, the
// database password hidden.
func Effective() ([]Var, error) {
	file, err := readEnvFile()
	if err != nil {
		return nil, err
	}
	out := make([]Var, 0, len(Vars))
	for _, v := range Vars {
		value := file.get(v.Name)
		if v.Name == "OMNICHAT_DATABASE_URL" {
			if u, err := url.Parse(value); err == nil {
				value = u.Redacted()
			}
		}
		out = append(out, Var{Name: v.Name, Default: value, Description: v.Description})
	}
	return out, nil
}

// EnvFileVar names the file of settings omnichat reads besides the
// environment; by default .env in the working directory, when it exists.
const EnvFileVar = "OMNICHAT_ENV_FILE"

// getter reads a setting: the environment first, then the env file, then the default.
type getter map[string]string

func (file getter) get(name string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	if v := file[name]; v != "" {
		return v
	}
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// readEnvFile reads KEY=VALUE lines (blank lines and # comments skipped, an
// "export " prefix and quotes around the value allowed), so that `make run`
// and every `omnichat` command in another terminal agree on the settings.
func readEnvFile() (getter, error) {
	path, named := os.LookupEnv(EnvFileVar)
	if !named || path == "" {
		path = ".env"
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return getter{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvFileVar, err)
	}
	out := getter{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: want KEY=VALUE", path, i+1)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[strings.TrimSpace(key)] = value
	}
	return out, nil
}

// Load reads and validates the environment (and the env file).
func Load() (Config, error) {
	file, err := readEnvFile()
	if err != nil {
		return Config{}, err
	}
	get := file.get
	c := Config{
		HTTPAddr:          get("OMNICHAT_HTTP_ADDR"),
		DatabaseURL:       get("OMNICHAT_DATABASE_URL"),
		TemporalAddress:   get("OMNICHAT_TEMPORAL_ADDRESS"),
		TemporalNamespace: get("OMNICHAT_TEMPORAL_NAMESPACE"),
		TaskQueue:         get("OMNICHAT_TASK_QUEUE"),
		LogFormat:         strings.ToLower(get("OMNICHAT_LOG_FORMAT")),
		TelegramAPIURL:    get("OMNICHAT_TELEGRAM_API_URL"),
		FacebookGraphURL:  get("OMNICHAT_FACEBOOK_GRAPH_URL"),
		MetricsAddr:       get("OMNICHAT_METRICS_ADDR"),
		OTLPEndpoint:      get("OTEL_EXPORTER_OTLP_ENDPOINT"),
		OTLPProtocol:      get("OTEL_EXPORTER_OTLP_PROTOCOL"),
	}
	var errs []string
	if err := c.LogLevel.UnmarshalText([]byte(get("OMNICHAT_LOG_LEVEL"))); err != nil {
		errs = append(errs, "OMNICHAT_LOG_LEVEL: "+err.Error())
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, "OMNICHAT_LOG_FORMAT must be text or json")
	}
	if c.MaxBodyBytes, err = strconv.ParseInt(get("OMNICHAT_MAX_BODY_BYTES"), 10, 64); err != nil || c.MaxBodyBytes < 1024 {
		errs = append(errs, "OMNICHAT_MAX_BODY_BYTES must be a whole number of at least 1024")
	}
	if c.MaxUploadBytes, err = strconv.ParseInt(get("OMNICHAT_MAX_UPLOAD_BYTES"), 10, 64); err != nil || c.MaxUploadBytes < 1024 || c.MaxUploadBytes > 20<<20 {
		errs = append(errs, "OMNICHAT_MAX_UPLOAD_BYTES must be a whole number from 1024 to 20971520")
	}
	if c.RateLimitPerToken, err = strconv.ParseFloat(get("OMNICHAT_RATE_LIMIT"), 64); err != nil || c.RateLimitPerToken <= 0 {
		errs = append(errs, "OMNICHAT_RATE_LIMIT must be a positive number")
	}
	if c.WebhookRateLimit, err = strconv.ParseFloat(get("OMNICHAT_WEBHOOK_RATE_LIMIT"), 64); err != nil || c.WebhookRateLimit <= 0 {
		errs = append(errs, "OMNICHAT_WEBHOOK_RATE_LIMIT must be a positive number")
	}
	if c.DBMaxConns, err = strconv.Atoi(get("OMNICHAT_DB_MAX_CONNS")); err != nil || c.DBMaxConns < 4 || c.DBMaxConns > 1000 {
		errs = append(errs, "OMNICHAT_DB_MAX_CONNS must be a whole number from 4 to 1000")
	}
	if c.StickyCacheSize, err = strconv.Atoi(get("OMNICHAT_STICKY_CACHE_SIZE")); err != nil || c.StickyCacheSize < 0 {
		errs = append(errs, "OMNICHAT_STICKY_CACHE_SIZE must be a whole number")
	}
	if c.WorkerPollers, err = strconv.Atoi(get("OMNICHAT_WORKER_POLLERS")); err != nil || c.WorkerPollers < 1 || c.WorkerPollers > 100 {
		errs = append(errs, "OMNICHAT_WORKER_POLLERS must be a whole number from 1 to 100")
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("OMNICHAT_SHUTDOWN_TIMEOUT")); err != nil || c.ShutdownTimeout <= 0 {
		errs = append(errs, "OMNICHAT_SHUTDOWN_TIMEOUT must be a Go duration such as 20s")
	}
	if c.ActionStartTimeout, err = time.ParseDuration(get("OMNICHAT_ACTION_START_TIMEOUT")); err != nil || c.ActionStartTimeout <= 0 {
		errs = append(errs, "OMNICHAT_ACTION_START_TIMEOUT must be a Go duration such as 1m")
	}
	if c.EventRetention, err = time.ParseDuration(get("OMNICHAT_EVENT_RETENTION")); err != nil || c.EventRetention < time.Minute {
		errs = append(errs, "OMNICHAT_EVENT_RETENTION must be a Go duration of at least 1m")
	}
	if c.EventStreamsPerUser, err = strconv.Atoi(get("OMNICHAT_EVENT_STREAMS_PER_USER")); err != nil || c.EventStreamsPerUser < 1 {
		errs = append(errs, "OMNICHAT_EVENT_STREAMS_PER_USER must be a whole number of at least 1")
	}
	if c.SessionTTL, err = time.ParseDuration(get("OMNICHAT_SESSION_TTL")); err != nil || c.SessionTTL < time.Minute {
		errs = append(errs, "OMNICHAT_SESSION_TTL must be a Go duration of at least 1m")
	}
	if c.OTLPProtocol != "http/protobuf" && c.OTLPProtocol != "grpc" {
		errs = append(errs, "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc")
	}
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL")
		}
	}
	if c.DatabaseURL == "" || c.TemporalAddress == "" || c.TaskQueue == "" {
		errs = append(errs, "OMNICHAT_DATABASE_URL, OMNICHAT_TEMPORAL_ADDRESS and OMNICHAT_TASK_QUEUE must not be empty")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Logger builds the process logger.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
