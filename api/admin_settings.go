package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/omnichat/omnichat/service"
)

func (s *server) settingRoutes(g *gin.RouterGroup) {
	settings := s.svc.Settings
	g.GET("/settings", func(c *gin.Context) { listAll(c, settings.List, settingDTO) })
	g.GET("/settings/:code", func(c *gin.Context) {
		v, err := settings.Get(c.Request.Context(), c.Param("code"))
		respond(c, http.StatusOK, settingDTO(&v), err)
	})
	g.PUT("/settings/:code", s.putSetting)
	g.DELETE("/settings/:code", func(c *gin.Context) {
		v, err := settings.Reset(c.Request.Context(), c.Param("code"))
		respond(c, http.StatusOK, settingDTO(&v), err)
	})
}

// SettingDTO is a system setting.
type SettingDTO struct {
	Code        string `json:"code"`
	Kind        string `json:"kind"`
	Value       string `json:"value"`
	Default     string `json:"default"`
	Description string `json:"description"`
}

func settingDTO(v *service.SettingValue) SettingDTO {
	return SettingDTO{Code: v.Code, Kind: v.Kind, Value: v.Value, Default: v.Default, Description: v.Description}
}

// PutSettingDTO sets a setting.
type PutSettingDTO struct {
	Value string `json:"value" binding:"max=2000"`
}

// maxSoundBytes bounds the notification sound upload.
const maxSoundBytes = 512 << 10

// putSetting stores a value; the notification sound takes the audio file as the body.
func (s *server) putSetting(c *gin.Context) {
	ctx := c.Request.Context()
	def, err := s.svc.Settings.Def(c.Param("code"))
	if err != nil {
		fail(c, err)
		return
	}
	var v service.SettingValue
	if def.Kind == "file" {
		mt := c.ContentType()
		if !strings.HasPrefix(mt, "audio/") {
			problem(c, http.StatusUnsupportedMediaType, "upload the sound as the body with an audio/* Content-Type")
			return
		}
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxSoundBytes+1))
		if err != nil {
			fail(c, err)
			return
		}
		if len(body) == 0 || len(body) > maxSoundBytes {
			problem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the sound must be 1 to %d bytes", maxSoundBytes))
			return
		}
		v, err = s.svc.Settings.SetFile(ctx, def.Code, mt, body)
		respond(c, http.StatusOK, settingDTO(&v), err)
		return
	}
	var req PutSettingDTO
	if !bindJSON(c, &req) {
		return
	}
	v, err = s.svc.Settings.Set(ctx, def.Code, req.Value)
	respond(c, http.StatusOK, settingDTO(&v), err)
}
