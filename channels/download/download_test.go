package download

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/omnichat/omnichat/channels"
)

func hostOf(s *httptest.Server) string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

func permanent(t *testing.T, err error, want string) {
	t.Helper()
	var p *channels.PermanentError
	if !errors.As(err, &p) || !strings.Contains(p.Reason, want) {
		t.Fatalf("want a permanent refusal mentioning %q, got %v", want, err)
	}
}

func TestFetchPolicy(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("secret internal data"))
	}))
	defer other.Close()
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("\x89PNG fake"))
		case "/page.html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>"))
		case "/big":
			w.Header().Set("Content-Type", "video/mp4")
			_, _ = w.Write(make([]byte, 2048))
		case "/big-chunked":
			w.Header().Set("Content-Type", "video/mp4")
			for i := 0; i < 4; i++ {
				_, _ = w.Write(make([]byte, 1024))
				w.(http.Flusher).Flush()
			}
		case "/to-loopback":
			http.Redirect(w, r, other.URL+"/x.png", http.StatusFound)
		case "/to-private":
			http.Redirect(w, r, "http://10.0.0.1/x.png", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer provider.Close()
	f := New(Policy{ConfiguredHosts: []string{hostOf(provider)}, Suffixes: []string{"localhost"}, MaxBytes: 1024})
	ctx := context.Background()

	got, err := f.Get(ctx, provider.URL+"/ok.png", nil)
	if err != nil || got.MediaType != "image/png" || string(got.Content) != "\x89PNG fake" {
		t.Fatalf("allowed fetch: %+v %v", got, err)
	}
	_, err = f.Get(ctx, other.URL+"/x.png", nil)
	permanent(t, err, "not one of the provider's")
	_, err = f.Get(ctx, provider.URL+"/to-loopback", nil)
	permanent(t, err, "not one of the provider's")
	_, err = f.Get(ctx, provider.URL+"/to-private", nil)
	permanent(t, err, "not one of the provider's")
	_, err = f.Get(ctx, provider.URL+"/to-metadata", nil)
	permanent(t, err, "not one of the provider's")
	_, err = f.Get(ctx, "file:///etc/passwd", nil)
	permanent(t, err, "scheme")
	// A trusted suffix that resolves to a private address is refused at dial time.
	_, err = f.Get(ctx, "http://localhost:"+strings.Split(hostOf(other), ":")[1]+"/x.png", nil)
	permanent(t, err, "private")
	_, err = f.Get(ctx, provider.URL+"/page.html", nil)
	permanent(t, err, "media type")
	_, err = f.Get(ctx, provider.URL+"/big", nil)
	permanent(t, err, "larger than the limit")
	_, err = f.Get(ctx, provider.URL+"/big-chunked", nil)
	permanent(t, err, "larger than the limit")
}
