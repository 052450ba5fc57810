package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

// call sends a JSON request with the given cookie and headers.
func call(t *testing.T, method, url string, body any, cookie *http.Cookie, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

func TestSessionSignInCSRFSignOutAndLimits(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, _ := f.user(false, f.queue)
	_, adminToken := f.user(true)
	var email string
	if err := f.db.QueryRow(f.ctx, `SELECT email FROM users WHERE id = $1`, agent).Scan(&email); err != nil {
		t.Fatal(err)
	}
	// No password yet: signing in fails like a wrong password.
	if r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": email, "password": "whatever1"}, nil); r.StatusCode != 401 {
		t.Fatalf("sign-in without a password set: %d, want 401", r.StatusCode)
	}
	if r, _ := call(t, "PUT", f.url+"/api/v1/admin/users/"+agent.String()+"/password", map[string]string{"password": "short"}, nil, "Authorization", "Bearer "+adminToken); r.StatusCode != 422 {
		t.Fatalf("short password: %d, want 422", r.StatusCode)
	}
	if r, _ := call(t, "PUT", f.url+"/api/v1/admin/users/"+agent.String()+"/password", map[string]string{"password": "correct horse"}, nil, "Authorization", "Bearer "+adminToken); r.StatusCode != 204 {
		t.Fatalf("set password: %d, want 204", r.StatusCode)
	}
	r, body := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": strings.ToUpper(email), "password": "correct horse"}, nil)
	if r.StatusCode != 201 {
		t.Fatalf("sign in: %d %s", r.StatusCode, body)
	}
	var sess api.SessionDTO
	_ = json.Unmarshal(body, &sess)
	var cookie *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "omnichat_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || sess.CSRFToken == "" || sess.User.ID != agent {
		t.Fatalf("session cookie %+v, answer %s", cookie, body)
	}
	if r, _ := call(t, "GET", f.url+"/api/v1/me", nil, cookie); r.StatusCode != 200 {
		t.Fatalf("GET with the cookie: %d", r.StatusCode)
	}
	if r, _ := call(t, "PUT", f.url+"/api/v1/agent/status", map[string]string{"status": "active"}, cookie); r.StatusCode != 403 {
		t.Fatalf("PUT with the cookie and no CSRF token: %d, want 403", r.StatusCode)
	}
	if r, _ := call(t, "PUT", f.url+"/api/v1/agent/status", map[string]string{"status": "active"}, cookie, "X-CSRF-Token", "wrong"); r.StatusCode != 403 {
		t.Fatalf("PUT with a wrong CSRF token: %d, want 403", r.StatusCode)
	}
	if r, _ := call(t, "PUT", f.url+"/api/v1/agent/status", map[string]string{"status": "active"}, cookie, "X-CSRF-Token", sess.CSRFToken); r.StatusCode != 200 {
		t.Fatalf("PUT with the CSRF token: %d, want 200", r.StatusCode)
	}
	if r, _ := call(t, "DELETE", f.url+"/api/v1/session", nil, cookie, "X-CSRF-Token", sess.CSRFToken); r.StatusCode != 204 {
		t.Fatalf("sign out: %d", r.StatusCode)
	}
	if r, _ := call(t, "GET", f.url+"/api/v1/me", nil, cookie); r.StatusCode != 401 {
		t.Fatalf("GET after signing out: %d, want 401", r.StatusCode)
	}
	// An expired session is refused.
	expired, err := f.store.CreateSession(f.ctx, agent, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := call(t, "GET", f.url+"/api/v1/me", nil, &http.Cookie{Name: "omnichat_session", Value: expired}); r.StatusCode != 401 {
		t.Fatalf("GET with an expired session: %d, want 401", r.StatusCode)
	}
	// Failed sign-ins: a burst of 5 (the first was the one without a
	// password), then 429 before any password check, even with the right one.
	for i := 1; i < 5; i++ {
		if r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": email, "password": "wrong password"}, nil); r.StatusCode != 401 {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, r.StatusCode)
		}
	}
	if r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": email, "password": "correct horse"}, nil); r.StatusCode != 429 {
		t.Fatalf("sign-in after 5 failures: %d, want 429", r.StatusCode)
	}
	if r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]any{"email": email, "password": "x", "admin": true}, nil); r.StatusCode != 400 && r.StatusCode != 422 {
		t.Fatalf("sign-in with an unknown field: %d, want 4xx", r.StatusCode)
	}
}

// A stream outlives the server's WriteTimeout: each write has its own deadline.
func TestEventsStreamOutlivesWriteTimeout(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	svc, _ := f.replica(service.Deps{})
	srv := httptest.NewUnstartedServer(api.New(api.Deps{Services: svc, Logger: testenv.Logger(), MaxBodyBytes: 1 << 20, RateLimitPerToken: 1000, WebhookRateLimit: 1000}))
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	t.Cleanup(func() { svc.Events.Close(); srv.Close() })
	agent, token := f.user(false, f.queue)
	chat := f.chat(f.queue, "in_progress", &agent)
	s := openStream(t, srv.URL, token, "")
	s.next(10 * time.Second)
	time.Sleep(2500 * time.Millisecond) // past the server's write timeout
	msg := f.inbound(chat, "later")
	if e := s.nextOf("message.created", chat, 10*time.Second); e.Data["message_id"] != msg {
		t.Fatalf("got %v", e.Data)
	}
}

// Wrong passwords sent in parallel cannot get past the allowance: an attempt
// is counted before its password is checked.
func TestSignInLimitHoldsForParallelAttempts(t *testing.T) {
	f := newEventsFixture(t, service.Deps{})
	agent, _ := f.user(false, f.queue)
	var email string
	if err := f.db.QueryRow(f.ctx, `SELECT email FROM users WHERE id = $1`, agent).Scan(&email); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Sessions.SetPassword(f.ctx, agent, "correct horse"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": email, "password": "wrong password"}, nil)
			codes <- r.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[401] > api.FailedSignInBurst || count[401]+count[429] != n {
		t.Fatalf("%d parallel wrong sign-ins answered %v; want at most %d × 401, the rest 429", n, count, api.FailedSignInBurst)
	}
	// Made-up emails from the same address are refused too: the address is
	// checked first.
	if r, _ := call(t, "POST", f.url+"/api/v1/session", map[string]string{"email": "someone-else@example.com", "password": "wrong password"}, nil); r.StatusCode != 429 {
		t.Fatalf("another email from the same address: %d, want 429", r.StatusCode)
	}
}

// The sign-in table: an address over its allowance creates no entry for the
// email, and a full table drops its least recently used key only.
func TestSignInFailureTable(t *testing.T) {
	f := api.NewSignInFailuresForTest()
	now := time.Now()
	for i := 0; i < api.FailedSignInBurst; i++ {
		if !f.Reserve("ip:a", now) {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if f.Reserve("ip:a", now) {
		t.Fatal("attempt past the burst allowed")
	}
	// Fill the table; "ip:a" stays the most recently used.
	for i := 0; f.Len() < api.MaxLimiters; i++ {
		f.Reserve(fmt.Sprintf("email:%d@example.com", i), now)
		f.Reserve("ip:a", now)
	}
	f.Reserve("email:new@example.com", now)
	if f.Len() != api.MaxLimiters || !f.Has("ip:a") || f.Has("email:0@example.com") || !f.Has("email:new@example.com") {
		t.Fatalf("after one more key: %d keys, ip:a kept %v, oldest dropped %v", f.Len(), f.Has("ip:a"), !f.Has("email:0@example.com"))
	}
	if f.Reserve("ip:a", now) {
		t.Fatal("a full table gave the exhausted address a fresh allowance")
	}
}
