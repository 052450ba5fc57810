package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnichat/omnichat/models"
)

const userKey = "user"

// authenticate resolves the bearer token: 401 without a valid one.
func (s *server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="omnichat"`)
		problem(c, http.StatusUnauthorized, "missing bearer token")
		return
	}
	u, err := s.Store.UserByToken(c.Request.Context(), token)
	if errors.Is(err, models.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="omnichat", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "token is unknown or revoked")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if !s.tokenLimits.allow(u.ID.String()) {
		c.Header("Retry-After", "1")
		problem(c, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	c.Set(userKey, u)
	c.Next()
}

func currentUser(c *gin.Context) *models.User {
	return c.MustGet(userKey).(*models.User)
}

// requireAdmin lets only holders of CanManageChats through: 403 otherwise.
func (s *server) requireAdmin(c *gin.Context) {
	ok, err := s.Store.CanManageChats(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		fail(c, err)
		return
	}
	if !ok {
		problem(c, http.StatusForbidden, "this needs the CanManageChats permission")
		return
	}
	c.Next()
}
