// Package panel is the agents' web panel: plain ES modules and CSS, embedded
// in the binary and served at /, with no build step and nothing loaded from
// elsewhere. It works on the agent API and the event stream, signed in with
// a session cookie.
package panel

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// csp allows only omnichat's own scripts, styles, images, sounds and calls.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the panel: / is the page, /panel/<file> its assets.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(r.URL.Path, "/panel/")
		if r.URL.Path == "/" || strings.HasSuffix(name, "/") || name == "index.html" {
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		fileServer.ServeHTTP(w, r2)
	})
}
