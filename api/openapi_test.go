package api

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/omnichat/omnichat/service"
	"gopkg.in/yaml.v3"
)

// Every route the router serves is in the OpenAPI document, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	engine := New(Deps{Services: &service.Services{}, MaxBodyBytes: 1 << 20, RateLimitPerToken: 1, WebhookRateLimit: 1}).(*gin.Engine)
	param := regexp.MustCompile(`:(\w+)`)
	served := map[string]bool{}
	for _, r := range engine.Routes() {
		key := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		served[key] = true
		if !documented[key] {
			t.Errorf("route %s is missing from openapi.yaml", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("openapi.yaml documents %s, which the router does not serve", key)
		}
	}
}
