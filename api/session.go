package api

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/panel"
	"github.com/omnichat/omnichat/service"
)

const (
	sessionCookie = "omnichat_session"
	csrfHeader    = "X-CSRF-Token"
	sessionKey    = "omnichat.session"
)

// csrfToken is the token a cookie-authenticated caller sends in X-CSRF-Token
// on every state-changing request. It is derived from the session, so it
// needs no storage, and a cross-site page (which cannot read our responses
// nor set custom headers without CORS, which omnichat never allows) cannot
// produce it.
func csrfToken(session string) string {
	h := sha256.Sum256([]byte("omnichat-csrf:" + session))
	return hex.EncodeToString(h[:])
}

// authenticateSession authenticates by the panel's session cookie.
func (s *server) authenticateSession(c *gin.Context, session string) {
	p, err := s.svc.Sessions.Authenticate(c.Request.Context(), session)
	if errors.Is(err, domain.ErrNotFound) {
		problem(c, http.StatusUnauthorized, "session expired or signed out; sign in again")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(c.GetHeader(csrfHeader)), []byte(csrfToken(session))) != 1 {
			problem(c, http.StatusForbidden, "missing or wrong "+csrfHeader+" header")
			return
		}
	}
	if !s.tokenLimits.allow(p.ID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	c.Set(principalKey, p)
	c.Set(sessionKey, session)
	c.Next()
}

// SignInDTO signs in to the panel.
type SignInDTO struct {
	Email    string `json:"email" binding:"required,email,max=320"`
	Password string `json:"password" binding:"required,max=200"`
}

// SessionDTO is the signed-in session: send CSRFToken in X-CSRF-Token on
// every POST, PUT, PATCH and DELETE made with the cookie.
type SessionDTO struct {
	User      MeDTO      `json:"user"`
	CSRFToken string     `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// signInFailures counts failed sign-ins per peer address and per email; over
// the allowance a sign-in is refused before the password is checked.
//
// The table holds at most maxLimiters keys; when full, the least recently
// used key is dropped (never the whole table, which would hand every
// attacker a fresh allowance).
type signInFailures struct {
	mu  sync.Mutex
	m   map[string]*list.Element // of *signInEntry
	lru list.List                // front: most recently used
}

type signInEntry struct {
	key string
	l   *rate.Limiter
}

// failedSignInRate: a burst of 5 failures, then one every 12 s, per key.
const failedSignInBurst = 5

// reserve takes one sign-in attempt from key's allowance. It reports false,
// taking nothing, when none is left. The caller cancels the reservation when
// the attempt turns out not to be a failure.
func (f *signInFailures) reserve(key string, now time.Time) (*rate.Reservation, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*list.Element{}
	}
	e, ok := f.m[key]
	if ok {
		f.lru.MoveToFront(e)
	} else {
		if len(f.m) >= maxLimiters {
			oldest := f.lru.Back()
			f.lru.Remove(oldest)
			delete(f.m, oldest.Value.(*signInEntry).key)
		}
		e = f.lru.PushFront(&signInEntry{key: key, l: rate.NewLimiter(rate.Every(12*time.Second), failedSignInBurst)})
		f.m[key] = e
	}
	r := e.Value.(*signInEntry).l.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return nil, false
	}
	return r, true
}

func (s *server) signIn(c *gin.Context) {
	var req SignInDTO
	if !bindJSON(c, &req) {
		return
	}
	// The peer address as the server sees it: forwarded headers are not
	// trusted, as anybody can set them.
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		host = c.Request.RemoteAddr
	}
	// An attempt is counted before the password is checked, so parallel
	// attempts cannot all get past the allowance: the peer address first
	// (an attempt refused there touches no email allowance, so made-up emails
	// neither fill the table nor help the attacker), then the email. A
	// successful sign-in gives its attempts back.
	now := time.Now()
	var held []*rate.Reservation
	for _, key := range []string{"ip:" + host, "email:" + strings.ToLower(req.Email)} {
		r, ok := s.signIns.reserve(key, now)
		if !ok {
			for _, h := range held {
				h.CancelAt(now)
			}
			c.Header("Retry-After", "12")
			problem(c, http.StatusTooManyRequests, "too many failed sign-ins; wait a little")
			return
		}
		held = append(held, r)
	}
	token, expires, err := s.svc.Sessions.SignIn(c.Request.Context(), req.Email, req.Password)
	if errors.Is(err, service.ErrBadCredentials) {
		problem(c, http.StatusUnauthorized, err.Error())
		return
	}
	// Not a failed sign-in (signed in, or the check could not be made): give
	// the attempts back. CancelAt the reservation's own time, as a later
	// time restores nothing.
	for _, h := range held {
		h.CancelAt(now)
	}
	if err != nil {
		fail(c, err)
		return
	}
	p, err := s.svc.Sessions.Authenticate(c.Request.Context(), token)
	if err != nil {
		fail(c, err)
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil})
	qs, err := s.svc.Agents.Queues(c.Request.Context(), p.ID)
	respond(c, http.StatusCreated, SessionDTO{User: MeDTO{UserDTO: userDTO(p.User), QueueIDs: qs, IsAdmin: p.Admin},
		CSRFToken: csrfToken(token), ExpiresAt: &expires}, err)
}

// getSession answers who is signed in, with the CSRF token of a cookie session.
func (s *server) getSession(c *gin.Context) {
	p := principal(c)
	out := SessionDTO{}
	if session := c.GetString(sessionKey); session != "" {
		out.CSRFToken = csrfToken(session)
	}
	qs, err := s.svc.Agents.Queues(c.Request.Context(), p.ID)
	out.User = MeDTO{UserDTO: userDTO(p.User), QueueIDs: qs, IsAdmin: p.Admin}
	respond(c, http.StatusOK, out, err)
}

func (s *server) signOut(c *gin.Context) {
	var err error
	if session := c.GetString(sessionKey); session != "" {
		err = s.svc.Sessions.SignOut(c.Request.Context(), session)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil})
	respond(c, http.StatusNoContent, 0, err)
}

// PasswordDTO sets a user's password.
type PasswordDTO struct {
	Password string `json:"password" binding:"required,min=8,max=72"`
}

func (s *server) setPassword(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		problem(c, http.StatusNotFound, "user not found")
		return
	}
	var req PasswordDTO
	if !bindJSON(c, &req) {
		return
	}
	respond(c, http.StatusNoContent, 0, s.svc.Sessions.SetPassword(c.Request.Context(), id, req.Password))
}

// panelRoutes are the web panel's pages and what it needs besides the agent
// API: sign-in and sign-out, the event stream, admins setting passwords.
func (s *server) panelRoutes(r *gin.Engine, v1, admin *gin.RouterGroup) {
	r.GET("/", gin.WrapH(panel.Handler()))
	r.GET("/panel/:file", gin.WrapH(panel.Handler()))
	r.POST("/api/v1/session", s.signIn)
	v1.GET("/session", s.getSession)
	v1.DELETE("/session", s.signOut)
	v1.GET("/events", s.streamEvents)
	admin.PUT("/users/:id/password", s.setPassword)
}
