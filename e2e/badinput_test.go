package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
)

func problemOf(t *testing.T, r testenv.Response) api.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p api.Problem
	r.Decode(t, &p)
	return p
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.agent("alice"), e.agent("bob")
	qa := e.queue("A", domain.RuleAllAgents, 0, alice)
	e.queue("B", domain.RuleAllAgents, 0, bob)
	e.activate(alice)
	ch := e.channel(qa)
	nothingWritten := func(what string) {
		t.Helper()
		if n := e.count(`SELECT count(*) FROM messages`) + e.count(`SELECT count(*) FROM chats`); n != 0 {
			t.Fatalf("%s: %d rows written", what, n)
		}
	}
	post := func(body []byte, sig string) testenv.Response {
		return e.Do("POST", "/webhooks/api/"+ch, "", body, apichannel.SignatureHeader, sig)
	}
	good := inboundBody("conv", "m1", "hello")

	if p := problemOf(t, post(good, apichannel.Sign("wrong-secret-wrong-secret", good))); p.Status != 401 {
		t.Fatalf("wrong signature: %+v", p)
	}
	nothingWritten("wrong signature")
	if p := problemOf(t, post(good, "")); p.Status != 401 {
		t.Fatalf("missing signature: %+v", p)
	}

	malformed := []byte(`{"conversation_id": "c", "message_id": `)
	if p := problemOf(t, post(malformed, apichannel.Sign(channelSecret, malformed))); p.Status != 400 {
		t.Fatalf("malformed JSON: %+v", p)
	}
	unknown := []byte(`{"conversation_id":"c","message_id":"m","sender":{"id":"s"},"text":"t","admin":true}`)
	if p := problemOf(t, post(unknown, apichannel.Sign(channelSecret, unknown))); p.Status != 400 || !strings.Contains(p.Detail, "admin") {
		t.Fatalf("unknown field: %+v", p)
	}
	missing := []byte(`{"conversation_id":"c","sender":{"id":"s"},"text":"t"}`)
	if p := problemOf(t, post(missing, apichannel.Sign(channelSecret, missing))); p.Status != 400 || !strings.Contains(p.Detail, "message_id") {
		t.Fatalf("missing field: %+v", p)
	}
	huge, _ := json.Marshal(apichannel.Inbound{ConversationID: "c", MessageID: "m", Sender: apichannel.Sender{ID: "s"}, Text: strings.Repeat("x", 70<<10)})
	if p := problemOf(t, post(huge, apichannel.Sign(channelSecret, huge))); p.Status != 413 {
		t.Fatalf("oversized body: %+v", p)
	}
	nothingWritten("bad webhooks")

	// Admin API: unknown fields, invalid values, field names in errors[].
	r := e.Do("POST", "/api/v1/admin/queues", e.admin, []byte(`{"name":"X","routing_rule":"all_agents","owner":"me"}`))
	if p := problemOf(t, r); p.Status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "owner" {
		t.Fatalf("unknown admin field: %+v", p)
	}
	r = e.Do("POST", "/api/v1/admin/queues", e.admin, map[string]any{"name": "", "routing_rule": "round_robin"})
	p := problemOf(t, r)
	fields := map[string]bool{}
	for _, f := range p.Errors {
		fields[f.Field] = true
	}
	if p.Status != 422 || !fields["name"] || !fields["routing_rule"] {
		t.Fatalf("invalid queue: %+v", p)
	}
	if n := e.count(`SELECT count(*) FROM queues`); n != 2 {
		t.Fatalf("refused queues must not be written: %d queues", n)
	}
	if p := problemOf(t, e.Do("GET", "/api/v1/chats?limit=1000", alice.Token, nil)); p.Status != 422 || p.Errors[0].Field != "limit" {
		t.Fatalf("page size over the cap: %+v", p)
	}

	// Authentication and authorization.
	if p := problemOf(t, e.Do("GET", "/api/v1/me", "", nil)); p.Status != 401 {
		t.Fatalf("no token: %+v", p)
	}
	if p := problemOf(t, e.Do("GET", "/api/v1/me", "omc_not-a-token", nil)); p.Status != 401 {
		t.Fatalf("unknown token: %+v", p)
	}
	if p := problemOf(t, e.Do("GET", "/api/v1/admin/queues", alice.Token, nil)); p.Status != 403 {
		t.Fatalf("agent on admin API: %+v", p)
	}

	// Another queue's chat: bob does not serve queue A, so for him it does not exist.
	e.must(200, post(good, apichannel.Sign(channelSecret, good)), "good inbound")
	chatID := e.waitChat(alice, "waiting", "").ID.String()
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/chats/" + chatID}, {"POST", "/api/v1/chats/" + chatID + "/accept"},
		{"GET", "/api/v1/chats/" + chatID + "/messages"}, {"POST", "/api/v1/chats/" + chatID + "/close"},
	} {
		if p := problemOf(t, e.Do(req.method, req.path, bob.Token, nil)); p.Status != 404 {
			t.Fatalf("bob %s %s: %+v", req.method, req.path, p)
		}
	}
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", bob.Token, map[string]any{"text": "hijack"})); p.Status != 404 {
		t.Fatalf("bob sends into another queue's chat: %+v", p)
	}
	// Alice can see it but has not accepted it: she may not reply.
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": "too early"})); p.Status != 409 {
		t.Fatalf("reply before accept: %+v", p)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); n != 0 {
		t.Fatalf("refused replies were written: %d", n)
	}
	// Secrets are write-only.
	r = e.Do("GET", "/api/v1/admin/channels/"+ch, e.admin, nil)
	if bytes.Contains(r.Body, []byte(channelSecret)) {
		t.Fatalf("channel secret returned: %s", r.Body)
	}
}

// Text PostgreSQL cannot store (a NUL, invalid UTF-8) never jams a chat: a
// customer's is stored with U+FFFD in its place and the conversation goes
// on; an agent's is refused with 422 and the next reply goes out.
func TestTextTheDatabaseCannotStoreJamsNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	q := e.queue("Q", domain.RuleAvailableAgent, 0, alice)
	e.activate(alice)
	ch := e.channel(q)
	e.must(200, e.inbound(ch, "nul", "m-1", "bad \x00 byte"), "customer message with a NUL")
	e.must(200, e.inbound(ch, "nul", "m-2", "and then \xff"), "customer message with invalid UTF-8")
	e.must(200, e.inbound(ch, "nul", "m-3", "plain"), "a plain message after them")
	offered := e.waitOffer(alice)
	path := "/api/v1/chats/" + offered.ID.String()
	testenv.Eventually(t, 15*time.Second, "all three customer messages are stored", func() bool {
		var msgs api.MessagePage
		e.must(200, e.Do("GET", path+"/messages", alice.Token, nil), "conversation").Decode(t, &msgs)
		var texts []string
		for _, m := range msgs.Items {
			texts = append(texts, m.Text)
		}
		return strings.Join(texts, "|") == "bad \uFFFD byte|and then \uFFFD|plain"
	})
	e.must(200, e.Do("POST", path+"/accept", alice.Token, nil), "accept")
	if p := problemOf(t, e.Do("POST", path+"/messages", alice.Token, map[string]any{"text": "oops \x00"})); p.Status != 422 {
		t.Fatalf("reply with a NUL: %+v", p)
	}
	var sent api.MessageDTO
	e.must(201, e.Do("POST", path+"/messages", alice.Token, map[string]any{"text": "All fine"}), "the next reply").Decode(t, &sent)
	testenv.Eventually(t, 15*time.Second, "the next reply reaches the customer", func() bool {
		for _, r := range e.out.got() {
			if r.MessageID == sent.ID.String() {
				return true
			}
		}
		return false
	})
}
