package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A request for help must never run the command: "all -h" used to start the
// API and a worker, "migrate -h" to migrate.
func TestHelpDoesNotRunTheCommand(t *testing.T) {
	// A configuration that does not load: a command that runs anyway fails.
	t.Setenv("OMNICHAT_DB_MAX_CONNS", "1")
	for _, cmd := range []string{"all", "serve", "worker", "migrate", "config", "admin"} {
		for _, h := range []string{"-h", "--help", "help"} {
			if err := run(context.Background(), cmd, []string{h}); err != nil {
				t.Errorf("omnichat %s %s: %v, want the command's help", cmd, h, err)
			}
		}
	}
}

func TestCommandLineMistakes(t *testing.T) {
	ctx := context.Background()
	if err := run(ctx, "bogus", nil); !errors.Is(err, errUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(ctx, "worker", []string{"--task-queue", "x"}); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("worker with a flag it does not have: %v", err)
	}
	if err := run(ctx, "admin", []string{"remove"}); err == nil || !strings.Contains(err.Error(), "admin create -email") {
		t.Errorf("admin without create: %v", err)
	}
}
