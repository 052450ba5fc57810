// Package download fetches attachments from messenger providers safely: only
// from the provider's own hosts, over http(s), never to a private address,
// with a size cap and a media-type allow-list.
//
// One exception is deliberate: the host of the provider API base URL an
// operator configured (OMNICHAT_TELEGRAM_API_URL, OMNICHAT_FACEBOOK_GRAPH_URL)
// is trusted as configured, wherever it resolves, so a self-hosted Bot API
// server on a private network works. Every other host, including any a
// redirect leads to, must resolve to a public address.
package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/omnichat/omnichat/channels"
)

// MaxBytes is the largest attachment omnichat stores (Telegram's own limit for bots).
const MaxBytes = 20 << 20

// DefaultMediaTypes are the media types omnichat accepts.
var DefaultMediaTypes = []string{"image/", "audio/", "video/", "application/pdf", "application/zip",
	"application/msword", "application/vnd.openxmlformats-officedocument.", "application/vnd.ms-excel",
	"application/vnd.oasis.opendocument.", "text/plain", "text/csv", "application/ogg", "application/octet-stream"}

// Errors a fetch reports; all are permanent.
var (
	ErrHostNotAllowed = errors.New("host is not one of the provider's")
	ErrPrivateAddress = errors.New("address is private")
	ErrTooLarge       = errors.New("file is larger than the limit")
	ErrMediaType      = errors.New("media type is not allowed")
)

// Policy says what may be fetched.
type Policy struct {
	// ConfiguredHosts are the hosts (host or host:port) of the provider API
	// base URL the operator configured. They are trusted exactly and may
	// resolve to any address, private and loopback included: the operator
	// chose them (a self-hosted Bot API server; a local fake in tests).
	ConfiguredHosts []string
	// Suffixes are trusted domain suffixes (".fbcdn.net"); their addresses
	// must be public.
	Suffixes   []string
	MaxBytes   int64
	MediaTypes []string
}

// Fetcher downloads under a policy.
type Fetcher struct {
	policy Policy
	client *http.Client
}

// New builds a fetcher. Redirects are followed only to allowed hosts.
func New(p Policy) *Fetcher {
	if p.MaxBytes == 0 {
		p.MaxBytes = MaxBytes
	}
	if p.MediaTypes == nil {
		p.MediaTypes = DefaultMediaTypes
	}
	f := &Fetcher{policy: p}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: f.control}
	f.client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           f.dialContext(dialer),
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return f.check(req.URL)
		},
	}
	return f
}

func (f *Fetcher) exact(hostport string) bool {
	for _, h := range f.policy.ConfiguredHosts {
		if strings.EqualFold(h, hostport) {
			return true
		}
	}
	return false
}

// check decides on a URL before any connection is made.
func (f *Fetcher) check(u *url.URL) error {
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q: %w", u.Scheme, ErrHostNotAllowed)
	}
	if f.exact(u.Host) || f.exact(u.Hostname()) {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, s := range f.policy.Suffixes {
		if strings.HasSuffix(host, strings.ToLower(s)) {
			if ip := net.ParseIP(host); ip != nil {
				return fmt.Errorf("%s: %w", host, ErrHostNotAllowed)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %w", u.Host, ErrHostNotAllowed)
}

// dialContext lets connections to configured hosts reach any address; all
// others go through control, which refuses non-public ones.
func (f *Fetcher) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if f.exact(addr) || f.exact(host) {
			trusted := *d
			trusted.Control = nil
			return trusted.DialContext(ctx, network, addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// control refuses, after DNS resolution, any non-public address.
func (f *Fetcher) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%s: %w", host, ErrPrivateAddress)
	}
	return nil
}

// Get fetches a URL within the policy. Every refusal is a *channels.PermanentError.
func (f *Fetcher) Get(ctx context.Context, rawURL string, header http.Header) (channels.Downloaded, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "bad attachment URL"}
	}
	if err := f.check(u); err != nil {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "attachment refused: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "bad attachment URL"}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrHostNotAllowed) || errors.Is(err, ErrPrivateAddress) {
			return channels.Downloaded{}, &channels.PermanentError{Reason: "attachment refused: " + err.Error()}
		}
		return channels.Downloaded{}, fmt.Errorf("fetch attachment: %w", err) // transient: retried
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return channels.Downloaded{}, fmt.Errorf("fetch attachment: provider answered %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return channels.Downloaded{}, &channels.PermanentError{Reason: fmt.Sprintf("attachment not available: %d", resp.StatusCode)}
	}
	if resp.ContentLength > f.policy.MaxBytes {
		return channels.Downloaded{}, &channels.PermanentError{Reason: fmt.Sprintf("attachment refused: %d bytes: %v", resp.ContentLength, ErrTooLarge)}
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		mt = "application/octet-stream"
	}
	if !f.allowedType(mt) {
		return channels.Downloaded{}, &channels.PermanentError{Reason: fmt.Sprintf("attachment refused: %s: %v", mt, ErrMediaType)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.policy.MaxBytes+1))
	if err != nil {
		return channels.Downloaded{}, fmt.Errorf("read attachment: %w", err)
	}
	if int64(len(body)) > f.policy.MaxBytes {
		return channels.Downloaded{}, &channels.PermanentError{Reason: "attachment refused: " + ErrTooLarge.Error()}
	}
	return channels.Downloaded{MediaType: mt, Content: body}, nil
}

func (f *Fetcher) allowedType(mt string) bool { return Allowed(mt, f.policy.MediaTypes) }

// Allowed reports whether a media type is on an allow-list whose entries are
// exact types or prefixes ending in "/" or ".".
func Allowed(mt string, list []string) bool {
	for _, p := range list {
		if mt == p || (strings.HasSuffix(p, "/") || strings.HasSuffix(p, ".")) && strings.HasPrefix(mt, p) {
			return true
		}
	}
	return false
}
