package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

var temporalClient client.Client

func TestMain(m *testing.M) { testenv.MainWithTemporal(m, &temporalClient) }

const channelSecret = "test-channel-secret-0123456789"

// env is a stack with an admin and helpers that drive it only through HTTP.
type env struct {
	*testenv.Stack
	t     *testing.T
	admin string
	out   *outbound
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return adminEnv(t, testenv.NewStack(t, temporalClient))
}

// adminEnv adds an admin and an outbound endpoint to a stack.
func adminEnv(t *testing.T, st *testenv.Stack) *env {
	t.Helper()
	u := &models.User{Name: "Admin", Email: "admin@example.com", CanManageChats: true}
	if err := st.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	_, token, err := st.Store.CreateToken(context.Background(), u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	out := newOutbound(t)
	return &env{Stack: st, t: t, admin: token, out: out}
}

func (e *env) must(status int, r testenv.Response, what string) testenv.Response {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
	return r
}

type agent struct {
	ID    string
	Token string
}

func (e *env) agent(name string) agent {
	e.t.Helper()
	var u api.UserDTO
	e.must(201, e.Do("POST", "/api/v1/admin/users", e.admin, map[string]any{"name": name, "email": name + "@example.com"}), "create user").Decode(e.t, &u)
	var tok api.TokenDTO
	e.must(201, e.Do("POST", "/api/v1/admin/users/"+u.ID.String()+"/tokens", e.admin, map[string]any{"name": "panel"}), "create token").Decode(e.t, &tok)
	return agent{ID: u.ID.String(), Token: tok.Token}
}

func (e *env) activate(a agent) {
	e.t.Helper()
	e.must(200, e.Do("PUT", "/api/v1/agent/status", a.Token, map[string]any{"status": "active"}), "activate")
}

func (e *env) queue(name, rule string, completionMinutes float64, agents ...agent) string {
	e.t.Helper()
	body := map[string]any{"name": name, "routing_rule": rule}
	if completionMinutes > 0 {
		body["completion_timeout_minutes"] = completionMinutes
	}
	var q api.QueueDTO
	e.must(201, e.Do("POST", "/api/v1/admin/queues", e.admin, body), "create queue").Decode(e.t, &q)
	for _, a := range agents {
		e.must(204, e.Do("POST", "/api/v1/admin/queues/"+q.ID.String()+"/agents", e.admin, map[string]any{"user_id": a.ID}), "add agent")
	}
	return q.ID.String()
}

func (e *env) channel(queueID string) string {
	e.t.Helper()
	var ch api.ChannelDTO
	e.must(201, e.Do("POST", "/api/v1/admin/channels", e.admin, map[string]any{
		"provider": "api", "name": "Site widget " + queueID[:8], "queue_id": queueID, "secret": channelSecret,
		"settings": map[string]string{"outbound_url": e.out.srv.URL + "/replies"},
	}), "create channel").Decode(e.t, &ch)
	return ch.ID.String()
}

func (e *env) setting(code, value string) {
	e.t.Helper()
	e.must(200, e.Do("PUT", "/api/v1/admin/settings/"+code, e.admin, map[string]any{"value": value}), "set "+code)
}

func inboundBody(conv, msgID, text string) []byte {
	b, _ := json.Marshal(apichannel.Inbound{ConversationID: conv, MessageID: msgID,
		Sender: apichannel.Sender{ID: "cust-" + conv, Name: "Customer " + conv}, Text: text, Timestamp: time.Now().UTC()})
	return b
}

// inbound posts a signed customer message.
func (e *env) inbound(channelID, conv, msgID, text string) testenv.Response {
	body := inboundBody(conv, msgID, text)
	return e.Do("POST", "/webhooks/api/"+channelID, "", body, apichannel.SignatureHeader, apichannel.Sign(channelSecret, body))
}

func (e *env) chats(a agent, status string) []api.ChatDTO {
	e.t.Helper()
	var page api.ChatPage
	e.must(200, e.Do("GET", "/api/v1/chats?limit=100&status="+status, a.Token, nil), "list chats").Decode(e.t, &page)
	return page.Items
}

func (e *env) chat(a agent, id string) api.ChatDTO {
	e.t.Helper()
	var c api.ChatDTO
	e.must(200, e.Do("GET", "/api/v1/chats/"+id, a.Token, nil), "get chat").Decode(e.t, &c)
	return c
}

// waitChat waits until the agent sees a chat in the given status, of the given
// contact ("" for any), and returns it.
func (e *env) waitChat(a agent, status, contact string) api.ChatDTO {
	e.t.Helper()
	var got api.ChatDTO
	testenv.Eventually(e.t, 10*time.Second, "the agent sees a "+status+" chat "+contact, func() bool {
		for _, c := range e.chats(a, status) {
			if contact == "" || c.ContactName == contact {
				got = c
				return true
			}
		}
		return false
	})
	return got
}

// waitOffer waits until the agent sees a chat offered to them and returns it.
func (e *env) waitOffer(a agent) api.ChatDTO { return e.waitChat(a, "offered", "") }

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.Store.Raw(context.Background(), &n, query, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// outbound is the fake endpoint of the API channel: it checks signatures and records replies.
type outbound struct {
	srv     *httptest.Server
	mu      sync.Mutex
	replies []apichannel.OutboundBody
	status  int
	// sameID, when set, is the message_id answered for every reply.
	sameID string
}

func newOutbound(t *testing.T) *outbound {
	o := &outbound{status: 200}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(apichannel.SignatureHeader) != apichannel.Sign(channelSecret, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var b apichannel.OutboundBody
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.status != 200 {
			http.Error(w, "refused", o.status)
			return
		}
		o.replies = append(o.replies, b)
		id := "ext-" + b.MessageID
		if o.sameID != "" {
			id = o.sameID
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"message_id": id})
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *outbound) got() []apichannel.OutboundBody {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]apichannel.OutboundBody(nil), o.replies...)
}

func (o *outbound) refuseWith(status int) {
	o.mu.Lock()
	o.status = status
	o.mu.Unlock()
}

// pendingSignals counts signals in the workflow's history not yet followed by
// a completed workflow task, i.e. not yet seen by the workflow.
func (e *env) pendingSignals(workflowID string) int {
	it := e.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	pending := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return -1
		}
		switch ev.GetEventType().String() {
		case "WorkflowExecutionSignaled":
			pending++
		case "WorkflowTaskCompleted":
			pending = 0
		}
	}
	return pending
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fileForm builds a multipart send: a file part and, when caption is set, a text part.
func fileForm(caption, name, mediaType string, content []byte) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if caption != "" {
		_ = w.WriteField("text", caption)
	}
	part, _ := w.CreatePart(map[string][]string{"Content-Disposition": {`form-data; name="file"; filename="` + name + `"`}, "Content-Type": {mediaType}})
	_, _ = part.Write(content)
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}
