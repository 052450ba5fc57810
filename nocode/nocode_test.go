package nocode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestParseNamesTheStepAndField(t *testing.T) {
	cases := map[string]string{
		`{"steps":[]}`: "nocode.steps",
		`{"steps":[{"type":"note","text":"x"},{"type":"teleport"}]}`:                          "nocode.steps[1].type",
		`{"steps":[{"type":"note","text":"{{if}}"}]}`:                                         "nocode.steps[0].text",
		`{"steps":[{"type":"http","method":"GET","url":"ftp://x"}]}`:                          "nocode.steps[0].url",
		`{"steps":[{"type":"http","method":"TRACE","url":"https://x.example"}]}`:              "nocode.steps[0].method",
		`{"steps":[{"type":"wait","duration":"-1s"}]}`:                                        "nocode.steps[0].duration",
		`{"steps":[{"type":"note","id":"a","text":"x"},{"type":"note","id":"a","text":"y"}]}`: "nocode.steps[1].id",
		`{"steps":[{"type":"note","text":"x","colour":"red"}]}`:                               "nocode",
	}
	for raw, field := range cases {
		_, err := Parse([]byte(raw))
		var errs Errors
		if !errors.As(err, &errs) || errs[0].Field != field {
			t.Errorf("%s: %v, want an error on %s", raw, err, field)
		}
	}
	if _, err := Parse([]byte(`{"steps":[{"type":"wait","duration":"2h"},{"type":"note","text":"{{.Contact.Name | default \"there\"}}"}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestRenderAndPick(t *testing.T) {
	c := &Context{Contact: ContactContext{Name: "Ann"}, Outputs: map[string]map[string]string{"crm": {"ticket.id": "T-1"}}}
	got, err := Render(`Hi {{.Contact.Name}}, {{index .Outputs.crm "ticket.id"}} {{.Outputs.none.x}}{{json .Contact.Name}}`, c)
	if err != nil || got != `Hi Ann, T-1 "Ann"` {
		t.Fatalf("%q %v", got, err)
	}
	doc := map[string]any{"a": map[string]any{"b": 3.0, "s": "x"}}
	if v, ok := Pick(doc, "a.b"); !ok || v != "3" {
		t.Fatalf("%q %v", v, ok)
	}
	if _, ok := Pick(doc, "a.c"); ok {
		t.Fatal("a missing field was found")
	}
}

func TestCheckTargetRefusesGuardedNetworksUnlessAllowed(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1/", "http://10.0.0.5/", "http://192.168.1.1/", "http://169.254.169.254/", "http://[::1]:80/",
		"http://[fe80::1]/", "http://0.0.0.0/", "http://localhost:8080/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/"} {
		if err := CheckTarget(u, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	if err := CheckTarget("http://127.0.0.1:9/", map[string]bool{"127.0.0.1": true}); err != nil {
		t.Fatal(err)
	}
	if err := CheckTarget("https://crm.example.com/x", nil); err != nil {
		t.Fatal(err)
	}
}

// A name that passes the URL check but resolves into a guarded network is
// refused when the connection is dialled.
func TestCallerRefusesAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	name := loopbackName(t)
	c := &Caller{}
	_, err := c.Do(context.Background(), Request{Method: "GET", URL: "http://" + name + ":" + u.Port() + "/"})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "resolves to") {
		t.Fatalf("dial-time check: %v", err)
	}
}

func TestCallerAllowListRedirectsAndSize(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ticket":{"id":"T-9"}}`))
		case "/same-host":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/other-host":
			http.Redirect(w, r, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/ok", http.StatusFound)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", MaxResponseBytes+10)))
		}
	}))
	defer srv.Close()
	c := &Caller{AllowList: func(context.Context) (map[string]bool, error) { return map[string]bool{"127.0.0.1": true}, nil }}
	resp, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/same-host"})
	if err != nil || resp.Status != 200 {
		t.Fatalf("allowed host: %+v %v", resp, err)
	}
	if v, _ := Pick(resp.JSON, "ticket.id"); v != "T-9" {
		t.Fatalf("answer: %+v", resp.JSON)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/other-host"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("redirect to another host: %v", err)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/big"}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized answer: %v", err)
	}
	if _, err := (&Caller{}).Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/ok"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("without the allow-list: %v", err)
	}
}

// loopbackName finds a host name (not "localhost") that resolves to a
// loopback address here: the machine's own name usually does.
func loopbackName(t *testing.T) string {
	candidates := []string{"localhost.localdomain", "ip6-localhost"}
	if h, err := os.Hostname(); err == nil {
		candidates = append([]string{h}, candidates...)
	}
	for _, h := range candidates {
		ips, err := net.LookupIP(h)
		if err == nil && len(ips) > 0 && ips[0].IsLoopback() && h != "localhost" {
			return h
		}
	}
	t.Skip("no host name other than localhost resolves to loopback on this machine")
	return ""
}

// Values inserted into a URL are escaped for where they land: a path segment
// before "?", a query value after it.
func TestRenderURLEscapesValues(t *testing.T) {
	c := &Context{Contact: ContactContext{Name: "a/../b?x=1#f"}, LastInbound: "hi & admin=true#x",
		Outputs: map[string]map[string]string{"crm": {"id": "T 1/2"}}}
	got, err := RenderURL(`https://crm.example.com/contacts/{{.Contact.Name}}/t/{{index .Outputs.crm "id"}}?q={{.LastInbound}}&n={{.Contact.Name}}{{.Outputs.none.x}}`, c)
	want := "https://crm.example.com/contacts/a%2F..%2Fb%3Fx=1%23f/t/T%201%2F2?q=hi+%26+admin%3Dtrue%23x&n=a%2F..%2Fb%3Fx%3D1%23f"
	if err != nil || got != want {
		t.Fatalf("got  %q %v\nwant %q", got, err, want)
	}
	// Plain text, functions and control structures still work.
	got, err = RenderURL(`https://h.example/{{if .Contact.Name}}{{.Contact.Name | printf "%s!"}}{{end}}?a={{default "x y" .Agent.Name}}`, &Context{Contact: ContactContext{Name: "A B"}})
	if err != nil || got != "https://h.example/A%20B%21?a=x+y" {
		t.Fatalf("got %q %v", got, err)
	}
}

// Secret headers are answered as Redacted and kept on an edit that sends
// Redacted back; other headers are shown.
func TestSecretHeadersRedactedAndKept(t *testing.T) {
	secret := []string{"Authorization", "proxy-authorization", "Cookie", "X-Api-Key", "X-Auth-Token", "X-Hub-Signature", "Client-Secret", "X-Password", "apikey"}
	for _, h := range secret {
		if !SecretHeader(h) {
			t.Errorf("%s is not treated as a secret", h)
		}
	}
	for _, h := range []string{"Content-Type", "Accept", "X-Request-Source"} {
		if SecretHeader(h) {
			t.Errorf("%s is treated as a secret", h)
		}
	}
	headers := map[string]string{"Accept": "application/json"}
	for i, h := range secret {
		headers[h] = fmt.Sprintf("s3cret-%d", i)
	}
	stored, _ := json.Marshal(Definition{Steps: []Step{{Type: StepHTTP, Method: "POST", URL: "https://h.example/", Headers: headers}}})
	shown := Redact(stored)
	if strings.Contains(string(shown), "s3cret") || !strings.Contains(string(shown), "application/json") {
		t.Fatalf("redacted: %s", shown)
	}
	var edited Definition
	if err := json.Unmarshal(shown, &edited); err != nil {
		t.Fatal(err)
	}
	KeepSecrets(&edited, stored)
	for i, h := range secret {
		if edited.Steps[0].Headers[h] != fmt.Sprintf("s3cret-%d", i) {
			t.Errorf("%s not kept: %q", h, edited.Steps[0].Headers[h])
		}
	}
}
