package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

// unavailable is a Temporal that takes nothing.
type unavailable struct{ calls int }

func (u *unavailable) DeliverInbound(context.Context, string, string, domain.InboundMessage) error {
	u.calls++
	return fmt.Errorf("signal-with-start: %w: connection refused", domain.ErrUnavailable)
}
func (u *unavailable) Accept(context.Context, string, string) error { return errors.New("unavailable") }
func (u *unavailable) Send(context.Context, string, service.SendCommand) (string, error) {
	return "", errors.New("unavailable")
}
func (u *unavailable) Close(context.Context, string, string) error { return errors.New("unavailable") }
func (u *unavailable) Transfer(context.Context, string, service.TransferCommand) error {
	return errors.New("unavailable")
}
func (u *unavailable) NotifyOffer(context.Context, service.Offer, time.Duration) error {
	return errors.New("unavailable")
}

// apiWith serves the API over a store with a chat runtime and a Temporal health check.
func apiWith(store *models.Store, runtime service.ChatRuntime, temporalHealth func(context.Context) error, webhookRate float64) *httptest.Server {
	svc := service.New(service.Deps{Store: store, Providers: channels.NewRegistry(apichannel.New(nil)), Runtime: runtime, TemporalHealth: temporalHealth})
	return httptest.NewServer(api.New(api.Deps{Services: svc, MaxBodyBytes: 1 << 20, RateLimitPerToken: 10, WebhookRateLimit: webhookRate}))
}

// apiChannelDatabase is a fresh database with one active API channel.
func apiChannelDatabase(t *testing.T) (*models.Store, *models.Channel) {
	t.Helper()
	_, store := testenv.NewDatabase(t)
	ctx := context.Background()
	q := &models.Queue{Name: "Q", RoutingRule: domain.RuleAllAgents}
	if err := store.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	ch := &models.Channel{Provider: apichannel.Name, Name: "C", Active: true, QueueID: q.ID, Secret: "0123456789abcdef0123",
		Settings: models.JSONMap{apichannel.SettingOutboundURL: "http://127.0.0.1:1/"}}
	if err := store.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	return store, ch
}

// When Temporal cannot take a message the webhook answers 503, so the
// provider retries; /readyz says Temporal is the problem.
func TestWebhookAnswers503WhenTemporalIsDown(t *testing.T) {
	store, ch := apiChannelDatabase(t)
	temporal := &unavailable{}
	srv := apiWith(store, temporal, func(context.Context) error { return errors.New("connection refused") }, 10)
	defer srv.Close()

	body := []byte(`{"conversation_id":"c","message_id":"m","sender":{"id":"s","name":"S"},"text":"hello"}`)
	req, _ := http.NewRequest("POST", srv.URL+"/webhooks/api/"+ch.ID.String(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(apichannel.SignatureHeader, apichannel.Sign(ch.Secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("webhook answered %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if temporal.calls != 1 {
		t.Fatalf("DeliverInbound called %d times", temporal.calls)
	}
	var n int
	if err := store.Raw(context.Background(), &n, `SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM chats)`); err != nil || n != 0 {
		t.Fatalf("rows written: %d (%v)", n, err)
	}

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s answered %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// A flood on one channel is refused before the channel is even looked up: an
// unknown channel answers 404 until its budget is spent, then 429.
func TestWebhookFloodIsLimitedBeforeLookup(t *testing.T) {
	_, store := testenv.NewDatabase(t)
	srv := apiWith(store, &unavailable{}, func(context.Context) error { return nil }, 1)
	defer srv.Close()
	path := srv.URL + "/webhooks/api/00000000-0000-0000-0000-000000000001"
	var codes []int
	for i := 0; i < 6; i++ {
		resp, err := http.Post(path, "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	// The budget is the burst: twice the rate plus one, i.e. 3.
	want := []int{404, 404, 404, 429, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("status codes %v, want %v", codes, want)
		}
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	l := api.NewLimitersForTest(1)
	for i := 0; i < 3*api.MaxLimiters; i++ {
		l.Allow(strconv.Itoa(i))
	}
	if n := l.Len(); n > api.MaxLimiters {
		t.Fatalf("limiter table holds %d buckets, bound is %d", n, api.MaxLimiters)
	}
}

// A webhook whose body stops short of its Content-Length (the provider's
// connection dropped mid-body) is answered 503 with Retry-After, so the
// provider retries, not 500.
func TestWebhookBodyCutShortAnswers503(t *testing.T) {
	_, store := testenv.NewDatabase(t)
	srv := apiWith(store, &unavailable{}, func(context.Context) error { return nil }, 10)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /webhooks/api/%s HTTP/1.1\r\nHost: omnichat\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"conversation_id\":", uuid.NewString())
	// Half-close: the body ends here, and the answer can still be read.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("webhook cut short: %d (Retry-After %q): %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// panicking is a Temporal whose signal panics, standing for a bug anywhere
// under a handler.
type panicking struct{ *unavailable }

func (panicking) DeliverInbound(context.Context, string, string, domain.InboundMessage) error {
	panic("bug under a handler")
}

// A panic under a handler is answered 500 with the request's ID, and logged
// through the service's logger with that ID and the panic.
func TestPanicIsLoggedWithTheRequestID(t *testing.T) {
	store, ch := apiChannelDatabase(t)
	var logs syncBuffer
	svc := service.New(service.Deps{Store: store, Providers: channels.NewRegistry(apichannel.New(nil)), Runtime: panicking{&unavailable{}}})
	srv := httptest.NewServer(api.New(api.Deps{Services: svc, MaxBodyBytes: 1 << 20, RateLimitPerToken: 10, WebhookRateLimit: 10,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	defer srv.Close()

	body := []byte(`{"conversation_id":"c","message_id":"m","sender":{"id":"s","name":"S"},"text":"hello"}`)
	req, _ := http.NewRequest("POST", srv.URL+"/webhooks/api/"+ch.ID.String(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(apichannel.SignatureHeader, apichannel.Sign(ch.Secret, body))
	req.Header.Set("X-Request-ID", "req-panic-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p api.Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || p.RequestID != "req-panic-1" {
		t.Fatalf("panic answered %d, problem %+v", resp.StatusCode, p)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == "ERROR" && rec["request_id"] == "req-panic-1" && rec["panic"] == "bug under a handler" && rec["stack"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no error line with the request ID and the panic in the log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
