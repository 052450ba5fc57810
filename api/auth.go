package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/service"
)

const principalKey = "omnichat.principal"

// authenticate resolves the bearer token, or else the panel's session
// cookie: 401 without a valid one.
func (s *server) authenticate(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if session, err := c.Cookie(sessionCookie); !ok && err == nil && session != "" {
		s.authenticateSession(c, session)
		return
	}
	if !ok || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="omnichat"`)
		problem(c, http.StatusUnauthorized, "missing bearer token")
		return
	}
	p, err := s.svc.Users.Authenticate(c.Request.Context(), token)
	if errors.Is(err, domain.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="omnichat", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "token is unknown or revoked")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if !s.tokenLimits.allow(p.ID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	c.Set(principalKey, p)
	c.Set(tokenKey, token)
	c.Next()
}

const tokenKey = "omnichat.token"

// reauthenticate checks again the credential a long request came with (an
// event stream): the principal as it is now, or ErrNotFound once the token
// was revoked or the session ended.
func (s *server) reauthenticate(c *gin.Context) (*service.Principal, error) {
	if session := c.GetString(sessionKey); session != "" {
		return s.svc.Sessions.Authenticate(c.Request.Context(), session)
	}
	return s.svc.Users.Authenticate(c.Request.Context(), c.GetString(tokenKey))
}

func principal(c *gin.Context) *service.Principal {
	return c.MustGet(principalKey).(*service.Principal)
}

// requireAdmin lets only holders of CanManageChats through: 403 otherwise.
func requireAdmin(c *gin.Context) {
	if !principal(c).Admin {
		problem(c, http.StatusForbidden, "this needs the CanManageChats permission")
		return
	}
	c.Next()
}
