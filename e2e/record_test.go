package e2e

import (
	"context"
	"os"
	"path/filepath"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistory writes the latest run's history of a workflow as JSON, the
// format `temporal workflow show --output json` prints, for the replay tests
// in package workflows. It does so only when OMNICHAT_RECORD_HISTORIES names a
// folder (`make record-histories`).
func (e *env) recordHistory(name, workflowID string) {
	e.t.Helper()
	dir := os.Getenv("OMNICHAT_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	it := e.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}
