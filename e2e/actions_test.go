package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
	"github.com/omnichat/omnichat/workflows"
)

// builtinCreateCase is the ID migrate gives the built-in "Create case" action.
const builtinCreateCase = "6c6d6e00-0000-4000-8000-000000000001"

type itemsOf[T any] struct {
	Items []T `json:"items"`
}

func (e *env) runAction(a agent, chatID, actionID, key string) api.ActionRunDTO {
	e.t.Helper()
	var run api.ActionRunDTO
	e.must(202, e.Do("POST", "/api/v1/chats/"+chatID+"/actions/"+actionID+"/run", a.Token, nil, "Idempotency-Key", key), "run action").Decode(e.t, &run)
	return run
}

func (e *env) runs(a agent, chatID string) []api.ActionRunDTO {
	e.t.Helper()
	var rs itemsOf[api.ActionRunDTO]
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/action-runs", a.Token, nil), "action runs").Decode(e.t, &rs)
	return rs.Items
}

// waitRun waits until a run has finished and returns it.
func (e *env) waitRun(a agent, chatID, runID string, within time.Duration) api.ActionRunDTO {
	e.t.Helper()
	var got api.ActionRunDTO
	testenv.Eventually(e.t, within, "run "+runID+" finishes", func() bool {
		for _, r := range e.runs(a, chatID) {
			if r.ID.String() == runID && r.Status != domain.RunStarted {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func (e *env) messages(a agent, chatID string) []api.MessageDTO {
	e.t.Helper()
	var page api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/messages?limit=100", a.Token, nil), "messages").Decode(e.t, &page)
	return page.Items
}

// systemNotes lists the chat's system messages.
func (e *env) systemNotes(a agent, chatID string) []string {
	var out []string
	for _, m := range e.messages(a, chatID) {
		if m.Direction == domain.System {
			out = append(out, m.Text)
		}
	}
	return out
}

func (e *env) createAction(body map[string]any) api.ActionDTO {
	e.t.Helper()
	var a api.ActionDTO
	e.must(201, e.Do("POST", "/api/v1/admin/actions", e.admin, body), "create action").Decode(e.t, &a)
	return a
}

// failAfterInsert makes the first attempt of CreateCaseForRun fail after the
// activity did its work, as a worker crash after the commit would.
type failAfterInsert struct {
	interceptor.WorkerInterceptorBase
	attempts atomic.Int32
}

func (f *failAfterInsert) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &failAfterInsertActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, f: f}
}

type failAfterInsertActivity struct {
	interceptor.ActivityInboundInterceptorBase
	f *failAfterInsert
}

func (a *failAfterInsertActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := a.Next.ExecuteActivity(ctx, in)
	if activity.GetInfo(ctx).ActivityType.Name == "CreateCaseForRun" {
		if n := a.f.attempts.Add(1); n == 1 && err == nil {
			return nil, errors.New("injected failure after the case was inserted")
		}
	}
	return res, err
}

// The built-in "Create case" action makes one case even when its activity
// fails after the insert and is retried; the chat shows "Case CS-… created";
// the case is readable by the queue's agents and admins, not by others.
func TestActionBuiltinCreateCaseOnceDespiteRetry(t *testing.T) {
	fault := &failAfterInsert{}
	e := adminEnv(t, testenv.NewStackWith(t, temporalClient, testenv.Options{WorkerInterceptors: []interceptor.WorkerInterceptor{fault}}))
	alice, bob := e.agent("alice"), e.agent("bob")
	ch := e.channel(e.queue("Billing", domain.RuleAllAgents, 0, alice))
	e.queue("Other", domain.RuleAllAgents, 0, bob)
	e.activate(alice)
	chatID := acceptedChat(e, alice, ch, "case")
	e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": "Let me open a case"}), "reply")

	var acts itemsOf[api.ChatActionDTO]
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/actions", alice.Token, nil), "chat actions").Decode(t, &acts)
	if len(acts.Items) != 1 || acts.Items[0].ID.String() != builtinCreateCase || acts.Items[0].Caption != "Create case" {
		t.Fatalf("actions of a fresh install: %+v", acts.Items)
	}
	run := e.runAction(alice, chatID, builtinCreateCase, "case-1")
	done := e.waitRun(alice, chatID, run.ID.String(), 60*time.Second)
	if done.Status != domain.RunCompleted || done.Result == nil || !strings.HasPrefix(*done.Result, "CS-") {
		t.Fatalf("run: %+v", done)
	}
	if n := fault.attempts.Load(); n < 2 {
		t.Fatalf("CreateCaseForRun ran %d times; the injected failure should have retried it", n)
	}
	if n := e.count(`SELECT count(*) FROM cases`); n != 1 {
		t.Fatalf("%d cases after a retried activity, want 1", n)
	}
	number := *done.Result
	notes := e.systemNotes(alice, chatID)
	if len(notes) != 1 || notes[0] != "Case "+number+" created" {
		t.Fatalf("system notes: %q", notes)
	}
	for _, r := range e.out.got() {
		if strings.Contains(r.Text, number) {
			t.Fatal("the case note reached the customer")
		}
	}

	var cases itemsOf[api.CaseDTO]
	e.must(200, e.Do("GET", "/api/v1/cases?chat_id="+chatID, alice.Token, nil), "cases of the chat").Decode(t, &cases)
	if len(cases.Items) != 1 {
		t.Fatalf("cases of the chat: %+v", cases.Items)
	}
	cs := cases.Items[0]
	chat := e.chat(alice, chatID)
	if cs.Number != number || cs.Subject != "hello from case" || cs.Status != domain.CaseNew || cs.ContactID != chat.ContactID ||
		cs.QueueID != chat.QueueID || !strings.Contains(cs.Description, "hello from case") || !strings.Contains(cs.Description, "Let me open a case") {
		t.Fatalf("case: %+v", cs)
	}
	e.must(200, e.Do("GET", "/api/v1/cases?contact_id="+chat.ContactID.String(), alice.Token, nil), "cases of the contact").Decode(t, &cases)
	if len(cases.Items) != 1 {
		t.Fatalf("cases of the contact: %+v", cases.Items)
	}
	e.must(200, e.Do("GET", "/api/v1/cases/"+cs.ID.String(), e.admin, nil), "admin reads the case")
	e.must(404, e.Do("GET", "/api/v1/cases/"+cs.ID.String(), bob.Token, nil), "another queue's agent")
	e.must(200, e.Do("GET", "/api/v1/cases", bob.Token, nil), "bob's cases").Decode(t, &cases)
	if len(cases.Items) != 0 {
		t.Fatalf("bob sees cases of a queue he does not serve: %+v", cases.Items)
	}

	e.recordHistory("action-run-create-case", workflows.ActionRunWorkflowID(run.ID.String()))
	e.recordHistory("action-create-case", workflows.ActionWorkflowID(run.ID.String()))
}

// An action written outside omnichat: examples/notifymanager is built and run
// as its own process on its own task queue; an admin registers it with one
// call; the agent sees it, runs it and sees its outcome in the chat.
func TestActionExternalWorkerNotifyManager(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "notifymanager")
	build := exec.Command("go", "build", "-o", bin, "../examples/notifymanager")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	var mu sync.Mutex
	var hooks []map[string]string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		hooks = append(hooks, b)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	taskQueue := "notify-manager-" + e.TaskQueue
	proc := exec.Command(bin)
	proc.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+testenv.TemporalAddress, "NOTIFY_TASK_QUEUE="+taskQueue, "NOTIFY_WEBHOOK_URL="+hook.URL)
	proc.Stdout, proc.Stderr = io.Discard, io.Discard
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })

	alice := e.agent("alice")
	q := e.queue("Invoices", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	act := e.createAction(map[string]any{"caption": "Notify manager", "queue_id": q, "workflow_type": "NotifyManager", "task_queue": taskQueue})
	chatID := acceptedChat(e, alice, ch, "invoice")
	var acts itemsOf[api.ChatActionDTO]
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/actions", alice.Token, nil), "chat actions").Decode(t, &acts)
	if len(acts.Items) != 2 {
		t.Fatalf("the agent should see Create case and Notify manager: %+v", acts.Items)
	}
	run := e.runAction(alice, chatID, act.ID.String(), "notify-1")
	done := e.waitRun(alice, chatID, run.ID.String(), 90*time.Second)
	if done.Status != domain.RunCompleted || done.Result == nil || *done.Result != "manager notified (webhook)" {
		t.Fatalf("run: %+v (error %v)", done, deref(done.Error))
	}
	mu.Lock()
	got := append([]map[string]string(nil), hooks...)
	mu.Unlock()
	if len(got) != 1 || got[0]["chat_id"] != chatID || got[0]["agent_id"] != alice.ID {
		t.Fatalf("webhook calls: %+v", got)
	}
	notes := e.systemNotes(alice, chatID)
	if len(notes) != 1 || notes[0] != `Action "Notify manager" completed: manager notified (webhook)` {
		t.Fatalf("system notes: %q", notes)
	}
	// The input is exactly the six documented fields.
	it := e.Temporal.GetWorkflowHistory(t.Context(), workflows.ActionWorkflowID(run.ID.String()), "", false, 0)
	ev, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var input map[string]string
	if err := json.Unmarshal(ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0].GetData(), &input); err != nil {
		t.Fatal(err)
	}
	chat := e.chat(alice, chatID)
	want := map[string]string{"ChatId": chatID, "ContactId": chat.ContactID.String(), "ActionId": act.ID.String(), "AgentId": alice.ID,
		"QueueId": q, "ChannelId": ch}
	if fmt.Sprint(input) != fmt.Sprint(want) {
		t.Fatalf("action input %v, want %v", input, want)
	}
	if q := ev.GetWorkflowExecutionStartedEventAttributes().GetTaskQueue().GetName(); q != taskQueue {
		t.Fatalf("action workflow ran on task queue %s", q)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AlwaysRefuses is an action workflow that fails with the error its agent should read.
func AlwaysRefuses(ctx workflow.Context, _ workflows.ActionInput) (string, error) {
	return "", temporal.NewNonRetryableApplicationError("the invoice system refused: account locked", "Refused", nil)
}

// A failing action workflow and a workflow type no worker serves are both
// shown as failed (timed out) with a readable reason; the chat stays as it was.
func TestActionFailuresShownWhileTheChatStaysAsItWas(t *testing.T) {
	e := adminEnv(t, testenv.NewStackWith(t, temporalClient, testenv.Options{ActionStartTimeout: 8 * time.Second}))
	failingQueue := "failing-" + e.TaskQueue
	w := worker.New(temporalClient, failingQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(AlwaysRefuses, workflow.RegisterOptions{Name: "AlwaysRefuses"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	chatID := acceptedChat(e, alice, ch, "fails")

	refuses := e.createAction(map[string]any{"caption": "Lock check", "workflow_type": "AlwaysRefuses", "task_queue": failingQueue})
	nobody := e.createAction(map[string]any{"caption": "Nobody serves", "workflow_type": "NoSuchWorkflow", "task_queue": "nobody-" + e.TaskQueue})
	r1 := e.runAction(alice, chatID, refuses.ID.String(), "r1")
	r2 := e.runAction(alice, chatID, nobody.ID.String(), "r2")
	got1 := e.waitRun(alice, chatID, r1.ID.String(), 60*time.Second)
	if got1.Status != domain.RunFailed || deref(got1.Error) != "the invoice system refused: account locked" {
		t.Fatalf("failing workflow: %+v (%s)", got1, deref(got1.Error))
	}
	got2 := e.waitRun(alice, chatID, r2.ID.String(), 60*time.Second)
	if got2.Status != domain.RunTimedOut || !strings.Contains(deref(got2.Error), "no worker started workflow NoSuchWorkflow") {
		t.Fatalf("unserved workflow: %+v (%s)", got2, deref(got2.Error))
	}
	d, err := e.Temporal.DescribeWorkflowExecution(t.Context(), workflows.ActionWorkflowID(r2.ID.String()), "")
	if err != nil || d.GetWorkflowExecutionInfo().GetStatus().String() != "Terminated" {
		t.Fatalf("the unserved workflow should be terminated: %v %v", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	notes := strings.Join(e.systemNotes(alice, chatID), "\n")
	if !strings.Contains(notes, `Action "Lock check" failed: the invoice system refused: account locked`) ||
		!strings.Contains(notes, `Action "Nobody serves" timed out: no worker started workflow NoSuchWorkflow`) {
		t.Fatalf("system notes: %s", notes)
	}
	if c := e.chat(alice, chatID); c.Status != domain.ChatInProgress || c.AgentID == nil || c.AgentID.String() != alice.ID {
		t.Fatalf("the chat changed: %+v", c)
	}
	e.recordHistory("action-run-timed-out", workflows.ActionRunWorkflowID(r2.ID.String()))
	e.recordHistory("action-run-failed", workflows.ActionRunWorkflowID(r1.ID.String()))
}

// The same Idempotency-Key twice starts one run; only the chat's agent may
// run an action (403 for a colleague), never on a closed chat (409); an
// action of another queue or a disabled one is neither listed nor runnable.
func TestActionRunIdempotencyAndPermissions(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.agent("alice"), e.agent("bob")
	q := e.queue("Q", domain.RuleAllAgents, 0, alice, bob)
	other := e.queue("Other", domain.RuleAllAgents, 0)
	ch := e.channel(q)
	e.activate(alice)
	chatID := acceptedChat(e, alice, ch, "perm")
	e.createAction(map[string]any{"caption": "Elsewhere", "queue_id": other, "workflow_type": "X", "task_queue": "x"})
	off := e.createAction(map[string]any{"caption": "Off", "enabled": false, "workflow_type": "X", "task_queue": "x"})
	var acts itemsOf[api.ChatActionDTO]
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/actions", alice.Token, nil), "chat actions").Decode(t, &acts)
	if len(acts.Items) != 1 || acts.Items[0].ID.String() != builtinCreateCase {
		t.Fatalf("listed: %+v", acts.Items)
	}
	e.must(404, e.Do("POST", "/api/v1/chats/"+chatID+"/actions/"+off.ID.String()+"/run", alice.Token, nil), "disabled action")

	first := e.runAction(alice, chatID, builtinCreateCase, "same-key")
	second := e.runAction(alice, chatID, builtinCreateCase, "same-key")
	if first.ID != second.ID {
		t.Fatalf("the same Idempotency-Key gave runs %s and %s", first.ID, second.ID)
	}
	e.waitRun(alice, chatID, first.ID.String(), 60*time.Second)
	if again := e.runAction(alice, chatID, builtinCreateCase, "same-key"); again.ID != first.ID || again.Status != domain.RunCompleted {
		t.Fatalf("the key sent again after the run finished: %+v", again)
	}
	if n := e.count(`SELECT count(*) FROM action_runs`); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM cases`); n != 1 {
		t.Fatalf("%d cases, want 1", n)
	}

	e.must(403, e.Do("POST", "/api/v1/chats/"+chatID+"/actions/"+builtinCreateCase+"/run", bob.Token, nil), "colleague runs an action")
	e.must(200, e.Do("POST", "/api/v1/chats/"+chatID+"/close", alice.Token, nil), "close")
	e.must(409, e.Do("POST", "/api/v1/chats/"+chatID+"/actions/"+builtinCreateCase+"/run", alice.Token, nil), "closed chat")
	if n := e.count(`SELECT count(*) FROM action_runs`); n != 1 {
		t.Fatalf("refused runs were recorded: %d runs", n)
	}
	// Deleting an action keeps its runs.
	e.must(204, e.Do("DELETE", "/api/v1/admin/actions/"+builtinCreateCase, e.admin, nil), "delete action")
	if rs := e.runs(alice, chatID); len(rs) != 1 || rs[0].ActionID != nil || rs[0].Caption != "Create case" {
		t.Fatalf("runs after the action was deleted: %+v", rs)
	}
}

// Definitions are checked on save: the step index and field are named (400);
// SSRF targets are refused; admin validation names its fields; secrets are
// write-only.
func TestActionDefinitionsValidated(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		steps []map[string]any
		field string
	}{
		{[]map[string]any{{"type": "note", "text": "ok"}, {"type": "launch_rocket"}}, "nocode.steps[1].type"},
		{[]map[string]any{{"type": "note", "text": "{{.Contact.Name"}}, "nocode.steps[0].text"},
		{[]map[string]any{{"type": "send_message"}}, "nocode.steps[0].text"},
		{[]map[string]any{{"type": "wait", "duration": "forever"}}, "nocode.steps[0].duration"},
		{[]map[string]any{{"type": "set_contact_field", "field": "Bad Field", "value": "x"}}, "nocode.steps[0].field"},
		{[]map[string]any{{"type": "http", "method": "POST", "url": "http://169.254.169.254/latest/meta-data"}}, "nocode.steps[0].url"},
		{[]map[string]any{{"type": "http", "method": "GET", "url": "http://127.0.0.1:5432/"}}, "nocode.steps[0].url"},
		{[]map[string]any{{"type": "http", "method": "GET", "url": "http://10.1.2.3/"}}, "nocode.steps[0].url"},
		{[]map[string]any{{"type": "note", "text": "ok"}, {"type": "http", "method": "GET", "url": "http://localhost:8080/admin"}}, "nocode.steps[1].url"},
		{[]map[string]any{{"type": "http", "method": "GET", "url": "http://[::1]/"}}, "nocode.steps[0].url"},
	}
	for i, c := range cases {
		r := e.Do("POST", "/api/v1/admin/actions", e.admin, map[string]any{"caption": fmt.Sprint("bad ", i), "nocode": map[string]any{"steps": c.steps}})
		var p api.Problem
		e.must(400, r, fmt.Sprint("definition ", i)).Decode(t, &p)
		if len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Fatalf("definition %d: errors %+v, want field %s", i, p.Errors, c.field)
		}
	}
	var p api.Problem
	e.must(422, e.Do("POST", "/api/v1/admin/actions", e.admin, map[string]any{"caption": "x", "workflow_type": "9 bad name", "task_queue": "q"}), "bad workflow type").Decode(t, &p)
	if p.Errors[0].Field != "workflow_type" {
		t.Fatalf("errors: %+v", p.Errors)
	}
	e.must(422, e.Do("POST", "/api/v1/admin/actions", e.admin, map[string]any{"caption": "x", "workflow_type": "W", "task_queue": "q",
		"queue_id": "00000000-0000-4000-8000-000000000999"}), "unknown queue").Decode(t, &p)
	if p.Errors[0].Field != "queue_id" {
		t.Fatalf("errors: %+v", p.Errors)
	}
	e.must(422, e.Do("POST", "/api/v1/admin/actions", e.admin, map[string]any{"caption": "x"}), "nothing to run")
	e.must(409, e.Do("POST", "/api/v1/admin/actions", e.admin, map[string]any{"caption": "create CASE", "workflow_type": "W", "task_queue": "q"}), "caption taken").Decode(t, &p)
	if p.Errors[0].Field != "caption" {
		t.Fatalf("errors: %+v", p.Errors)
	}
	if n := e.count(`SELECT count(*) FROM actions`); n != 1 {
		t.Fatalf("refused actions were stored: %d", n)
	}

	// The Authorization header is write-only; sending the placeholder back keeps it.
	def := map[string]any{"steps": []map[string]any{{"type": "http", "method": "POST", "url": "https://crm.example.com/hook",
		"headers": map[string]string{"Authorization": "Bearer s3cret"}}}}
	act := e.createAction(map[string]any{"caption": "CRM", "nocode": def})
	if strings.Contains(string(act.NoCode), "s3cret") {
		t.Fatalf("secret answered: %s", act.NoCode)
	}
	var patched api.ActionDTO
	e.must(200, e.Do("PATCH", "/api/v1/admin/actions/"+act.ID.String(), e.admin, map[string]any{"nocode": json.RawMessage(act.NoCode), "caption": "CRM hook"}), "patch").Decode(t, &patched)
	if n := e.count(`SELECT count(*) FROM actions WHERE definition::text LIKE '%Bearer s3cret%'`); n != 1 || patched.Caption != "CRM hook" {
		t.Fatalf("the stored secret was lost on an edit that sent the placeholder (%d)", n)
	}
}

// A no-code action using every step type against a local endpoint on the
// allow-list; the chat is closed while the action waits, and the run still
// completes and is recorded.
func TestActionNoCodeEveryStepOutlivesItsChat(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var calls []map[string]any
	var auths []string
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		calls = append(calls, b)
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ticket":{"id":"T-42","priority":"high"},"ok":true}`)
	}))
	t.Cleanup(crm.Close)
	e.setting("ActionHttpAllowList", "127.0.0.1")
	alice := e.agent("alice")
	q := e.queue("Q", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	def := map[string]any{"steps": []map[string]any{
		{"type": "create_case", "id": "case", "subject": "Refund for {{.Contact.Name}}"},
		{"type": "http", "id": "crm", "method": "POST", "url": crm.URL + "/tickets", "headers": map[string]string{"Authorization": "Bearer crm-token"},
			"body": map[string]any{"chat": "{{.Chat.ID}}", "case": "{{.Outputs.case.number}}", "said": "{{.LastInbound}}", "queue": "{{.Queue.Name}}"},
			"keep": []string{"ticket.id", "ok"}},
		{"type": "set_contact_field", "field": "crm_ticket", "value": "{{index .Outputs.crm \"ticket.id\"}}"},
		{"type": "send_message", "text": "Your ticket is {{index .Outputs.crm \"ticket.id\"}}"},
		{"type": "note", "text": "Case {{.Outputs.case.number}} linked to {{index .Outputs.crm \"ticket.id\"}}"},
		{"type": "wait", "duration": "4s"},
		{"type": "note", "text": "Waited; chat was {{.Chat.Status}}"},
	}}
	act := e.createAction(map[string]any{"caption": "Refund", "queue_id": q, "nocode": def})
	chatID := acceptedChat(e, alice, ch, "refund")
	run := e.runAction(alice, chatID, act.ID.String(), "refund-1")

	testenv.Eventually(t, 60*time.Second, "the steps before the wait ran", func() bool {
		for _, n := range e.systemNotes(alice, chatID) {
			if strings.Contains(n, "linked to T-42") {
				return true
			}
		}
		return false
	})
	e.must(200, e.Do("POST", "/api/v1/chats/"+chatID+"/close", alice.Token, nil), "close while the action waits")
	done := e.waitRun(alice, chatID, run.ID.String(), 60*time.Second)
	if done.Status != domain.RunCompleted {
		t.Fatalf("run: %+v (%s)", done, deref(done.Error))
	}
	mu.Lock()
	if len(calls) != 1 || calls[0]["chat"] != chatID || !strings.HasPrefix(fmt.Sprint(calls[0]["case"]), "CS-") ||
		calls[0]["said"] != "hello from refund" || calls[0]["queue"] != "Q" || auths[0] != "Bearer crm-token" {
		t.Fatalf("CRM calls: %+v %q", calls, auths)
	}
	mu.Unlock()
	var cs itemsOf[api.CaseDTO]
	e.must(200, e.Do("GET", "/api/v1/cases?chat_id="+chatID, alice.Token, nil), "cases").Decode(t, &cs)
	if len(cs.Items) != 1 || cs.Items[0].Subject != "Refund for Customer refund" {
		t.Fatalf("cases: %+v", cs.Items)
	}
	if n := e.count(`SELECT count(*) FROM contacts WHERE fields->>'crm_ticket' = 'T-42'`); n != 1 {
		t.Fatal("the contact field was not set")
	}
	testenv.Eventually(t, 10*time.Second, "the customer got the message", func() bool {
		for _, r := range e.out.got() {
			if r.Text == "Your ticket is T-42" {
				return true
			}
		}
		return false
	})
	notes := e.systemNotes(alice, chatID)
	joined := strings.Join(notes, "\n")
	if !strings.Contains(joined, "Waited; chat was closed") || !strings.Contains(joined, `Action "Refund" completed: 7 steps done`) {
		t.Fatalf("notes: %q", notes)
	}
	for _, r := range e.out.got() {
		if strings.Contains(r.Text, "linked to") || strings.Contains(r.Text, "Waited") {
			t.Fatal("a note reached the customer")
		}
	}
	e.recordHistory("action-run-nocode", workflows.ActionRunWorkflowID(run.ID.String()))
	e.recordHistory("action-nocode", workflows.ActionWorkflowID(run.ID.String()))
	e.recordHistory("chat-with-action", "chat/"+ch+"/refund")
}

// A failed HTTP step tells agents the call's scheme, host and path only: a
// secret in the query, and the connection's details, stay in the log.
func TestActionNoCodeHTTPFailureHidesTheQuery(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close() // nothing listens there: the call fails to connect
	e.setting("ActionHttpAllowList", "127.0.0.1")
	alice := e.agent("alice")
	q := e.queue("Q", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	def := map[string]any{"steps": []map[string]any{
		{"type": "http", "method": "GET", "url": "http://" + closed + "/hook?api_key=SECRET-123&who={{.Contact.Name}}"},
	}}
	act := e.createAction(map[string]any{"caption": "Leaky", "queue_id": q, "nocode": def})
	chatID := acceptedChat(e, alice, ch, "leak")
	run := e.runAction(alice, chatID, act.ID.String(), "leak-1")
	done := e.waitRun(alice, chatID, run.ID.String(), 90*time.Second)
	if done.Status != domain.RunFailed {
		t.Fatalf("run: %+v (%s)", done, deref(done.Error))
	}
	shown := deref(done.Error) + "\n" + strings.Join(e.systemNotes(alice, chatID), "\n")
	if !strings.Contains(shown, "GET http://"+closed+"/hook") || strings.Contains(shown, "SECRET") ||
		strings.Contains(shown, "api_key") || strings.Contains(shown, "dial") {
		t.Fatalf("what agents see: %q", shown)
	}
}
