package nocode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Limits of an HTTP step.
const (
	HTTPTimeout      = 10 * time.Second
	MaxResponseBytes = 1 << 20
	maxRedirects     = 3
)

// ErrRefused marks a call the guard refused: the target is in a private,
// loopback or link-local network that the allow-list does not name.
var ErrRefused = errors.New("refused target")

// Request is a rendered HTTP step.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    any
}

// Response is what an HTTP step keeps: its status and the decoded JSON answer.
type Response struct {
	Status int
	JSON   any
}

// Caller makes HTTP steps' calls. A target whose address is private,
// loopback, link-local, unspecified or multicast is refused when the
// connection is dialled (so a name that resolves there is refused too),
// unless the URL's host is on the allow-list. Redirects stay on the same
// host; answers are cut at MaxResponseBytes; each call has HTTPTimeout.
type Caller struct {
	// AllowList gives the hosts (names or IPs, lower-case) that may be in
	// those networks, e.g. an internal CRM.
	AllowList func(ctx context.Context) (map[string]bool, error)
}

// CheckTarget refuses a URL whose host is a literal address in a guarded
// network and not on the allow-list; a host name is checked when dialled.
func CheckTarget(raw string, allow map[string]bool) error {
	if err := checkURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	host := strings.ToLower(u.Hostname())
	if allow[host] {
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%s is a loopback host not on the ActionHttpAllowList setting: %w", host, ErrRefused)
	}
	if ip, err := netip.ParseAddr(host); err == nil && guarded(ip) {
		return fmt.Errorf("%s is a private, loopback or link-local address not on the ActionHttpAllowList setting: %w", host, ErrRefused)
	}
	return nil
}

func guarded(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip) // carrier-grade NAT
}

// Do makes the call and decodes a JSON answer (a non-JSON answer keeps only its status).
func (c *Caller) Do(ctx context.Context, r Request) (*Response, error) {
	allow := map[string]bool{}
	if c.AllowList != nil {
		var err error
		if allow, err = c.AllowList(ctx); err != nil {
			return nil, err
		}
	}
	if err := CheckTarget(r.URL, allow); err != nil {
		return nil, err
	}
	u, _ := url.Parse(r.URL)
	host := strings.ToLower(u.Hostname())
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allow[host] {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%s: %w", address, ErrRefused)
			}
			if guarded(ap.Addr()) {
				return fmt.Errorf("%s resolves to %s, a private, loopback or link-local address not on the ActionHttpAllowList setting: %w", host, ap.Addr(), ErrRefused)
			}
			return nil
		}
	}
	client := &http.Client{
		Timeout:   HTTPTimeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, ResponseHeaderTimeout: HTTPTimeout, MaxResponseHeaderBytes: 64 << 10},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects: %w", maxRedirects, ErrRefused)
			}
			if !strings.EqualFold(req.URL.Hostname(), host) {
				return fmt.Errorf("redirect to another host (%s): %w", req.URL.Hostname(), ErrRefused)
			}
			return nil
		},
	}
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "omnichat-action")
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("the answer is larger than %d bytes", MaxResponseBytes)
	}
	out := &Response{Status: resp.StatusCode}
	if len(bytes.TrimSpace(data)) > 0 && json.Valid(data) {
		_ = json.Unmarshal(data, &out.JSON)
	}
	return out, nil
}
