// Command notifymanager is an example of a chat action written outside
// omnichat: a Temporal worker of its own, on its own task queue, serving the
// workflow NotifyManager, which "notifies a manager about an invoice payment"
// by writing a log line and, when NOTIFY_WEBHOOK_URL is set, posting to that
// webhook. It knows nothing of omnichat's code: it binds the action input by
// its JSON field names only.
//
//	TEMPORAL_ADDRESS=127.0.0.1:7233 go run ./examples/notifymanager
//
// Register it once as an action (workflow_type NotifyManager, task_queue
// notify-manager) and every agent of the action's queue can run it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Input is what omnichat passes to every action workflow.
type Input struct {
	ChatId    string // the field names are the JSON names omnichat sends
	ContactId string
	ActionId  string
	AgentId   string
	QueueId   string
	ChannelId string
}

// NotifyManager notifies the manager and returns what it did; omnichat
// shows the returned text in the chat.
func NotifyManager(ctx workflow.Context, in Input) (string, error) {
	if in.ChatId == "" {
		return "", temporal.NewNonRetryableApplicationError("no ChatId in the input", "BadInput", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var out string
	err := workflow.ExecuteActivity(ctx, Notify, in).Get(ctx, &out)
	return out, err
}

// Notify writes the notification to the log and to the webhook, if any.
func Notify(ctx context.Context, in Input) (string, error) {
	slog.Info("manager notified about an invoice payment", "chat", in.ChatId, "contact", in.ContactId, "agent", in.AgentId)
	url := os.Getenv("NOTIFY_WEBHOOK_URL")
	if url == "" {
		return "manager notified (log)", nil
	}
	body, _ := json.Marshal(map[string]string{"event": "invoice_payment", "chat_id": in.ChatId, "contact_id": in.ContactId,
		"agent_id": in.AgentId, "attempt": fmt.Sprint(activity.GetInfo(ctx).Attempt)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(err.Error(), "BadWebhook", nil)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return "manager notified (webhook)", nil
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger)
	addr := envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	queue := envOr("NOTIFY_TASK_QUEUE", "notify-manager")
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: envOr("TEMPORAL_NAMESPACE", "default"), Logger: tlog.NewStructuredLogger(logger)})
	if err != nil {
		logger.Error("connect to Temporal", "address", addr, "error", err)
		os.Exit(1)
	}
	defer c.Close()
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(NotifyManager, workflow.RegisterOptions{Name: "NotifyManager"})
	w.RegisterActivity(Notify)
	if err := w.Start(); err != nil {
		logger.Error("start worker", "error", err)
		os.Exit(1)
	}
	logger.Info("notifymanager worker started", "task_queue", queue, "temporal", addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	w.Stop()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
