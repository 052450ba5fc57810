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
		def := "`" + v.Default + "`"
		if v.Default == "" {
			def = "(empty)"
		}
		if !strings.Contains(string(readme), "| `"+v.Name+"` | "+def+" |") {
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

// Settings in the env file apply; the environment overrides them.
func TestLoadReadsTheEnvFile(t *testing.T) {
	path := t.TempDir() + "/omnichat.env"
	content := "# local settings\nexport OMNICHAT_DATABASE_URL=\"postgres://me@db.example:5433/chats?sslmode=disable\"\nOMNICHAT_HTTP_ADDR=:9090\n\nOMNICHAT_TASK_QUEUE='mine'\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFileVar, path)
	t.Setenv("OMNICHAT_TASK_QUEUE", "from-the-environment")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://me@db.example:5433/chats?sslmode=disable" || c.HTTPAddr != ":9090" || c.TaskQueue != "from-the-environment" {
		t.Fatalf("config from the env file: %+v", c)
	}
	t.Setenv(EnvFileVar, path+".missing")
	if _, err := Load(); err == nil {
		t.Fatal("a named env file that does not exist must be an error")
	}
}
