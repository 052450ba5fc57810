package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	omniworker "github.com/omnichat/omnichat/worker"
)

// Histories recorded from real runs of every release (make record-histories
// SET=<release>, one folder each) must replay without non-determinism against
// the current workflow code: a chat that runs while omnichat is upgraded
// carries on. A set is never re-recorded; a workflow change adds a set.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories found: %v", err)
	}
	replayer := worker.NewWorkflowReplayer()
	omniworker.RegisterWorkflows(replayer)
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
