package config

import (
	"os"
	"strings"
	"testing"
)

// The README documents every environment variable with its default.
func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		if !strings.Contains(string(readme), "| `"+v.Name+"` | `"+v.Default+"` |") {
			t.Errorf("README configuration table lacks %s with default %q", v.Name, v.Default)
		}
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Setenv("OMNICHAT_LOG_FORMAT", "xml")
	t.Setenv("OMNICHAT_MAX_BODY_BYTES", "ten")
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), "OMNICHAT_LOG_FORMAT") || !strings.Contains(err.Error(), "OMNICHAT_MAX_BODY_BYTES") {
		t.Fatalf("want both problems named, got %v", err)
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.TaskQueue != "omnichat" || c.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
}
