package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	s     *models.Store
	queue *models.Queue
	ch    *models.Channel
}

func newFixture(t *testing.T, rule string) *fixture {
	_, s := testenv.NewDatabase(t)
	f := &fixture{t: t, ctx: context.Background(), s: s}
	f.queue = &models.Queue{Name: "Q", RoutingRule: rule}
	f.must(s.CreateQueue(f.ctx, f.queue))
	f.ch = &models.Channel{Provider: "api", Name: "C", Active: true, QueueID: f.queue.ID, Secret: "s"}
	f.must(s.CreateChannel(f.ctx, f.ch))
	return f
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) agent(name string, lastAccepted *time.Time, viaRole bool) uuid.UUID {
	f.t.Helper()
	u := &models.User{Name: name, Email: name + "@example.com", Status: domain.AgentActive, LastAcceptedAt: lastAccepted}
	f.must(f.s.CreateUser(f.ctx, u))
	if viaRole {
		r := &models.Role{Name: "role-" + name}
		f.must(f.s.CreateRole(f.ctx, r))
		f.must(f.s.AddRoleMember(f.ctx, r.ID, u.ID))
		f.must(f.s.AddQueueRole(f.ctx, f.queue.ID, r.ID))
	} else {
		f.must(f.s.AddQueueUser(f.ctx, f.queue.ID, u.ID))
	}
	return u.ID
}

// chat opens a chat with one inbound message.
func (f *fixture) chat(conv string) uuid.UUID {
	f.t.Helper()
	id := uuid.New()
	res, err := f.s.Ingest(f.ctx, models.IngestInput{ChatID: id, OpenChat: true, WorkflowID: "wf-" + conv, ChannelID: f.ch.ID,
		Message: domain.InboundMessage{ConversationID: conv, SenderID: "cust-" + conv, SenderName: "Cust", ExternalID: "m-" + conv, Text: "hi"}})
	f.must(err)
	if !res.Stored || res.Duplicate {
		f.t.Fatalf("first message not stored: %+v", res)
	}
	return id
}

func (f *fixture) accept(chatID, agentID uuid.UUID) {
	f.t.Helper()
	out, err := f.s.Accept(f.ctx, chatID, agentID)
	if err != nil || !out.Accepted {
		f.t.Fatalf("accept: %+v %v", out, err)
	}
}

func (f *fixture) assign() map[uuid.UUID]uuid.UUID {
	f.t.Helper()
	offers, _, _, err := f.s.AssignWaiting(f.ctx, 100, service.Decide)
	f.must(err)
	out := map[uuid.UUID]uuid.UUID{}
	for _, o := range offers {
		out[o.ChatID] = o.AgentID
	}
	return out
}

func TestDispatcherOrderCapacityAndExpiry(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	_, err := f.s.SetSetting(f.ctx, models.SettingSimultaneousChats, "1")
	f.must(err)
	old := time.Now().Add(-time.Hour)
	recent := time.Now().Add(-time.Minute)
	recentAgent := f.agent("recent", &recent, false)
	oldAgent := f.agent("old", &old, true) // serves the queue through a role

	c1, c2, c3 := f.chat("1"), f.chat("2"), f.chat("3")
	got := f.assign()
	if len(got) != 2 || got[c1] != oldAgent || got[c2] != recentAgent {
		t.Fatalf("want oldest chat to the agent whose last accept is oldest, then the next: %v", got)
	}
	if again := f.assign(); len(again) != 0 {
		t.Fatalf("both agents are at SimultaneousChats 1, yet offers were made: %v", again)
	}

	// The old agent lets the offer expire: inactive, and c1 keeps its place ahead of c3.
	expired, err := f.s.ExpireOffer(f.ctx, c1, oldAgent, time.Time{})
	f.must(err)
	if !expired {
		t.Fatal("offer should have expired")
	}
	if u, _ := f.s.GetUser(f.ctx, oldAgent); u.Status != domain.AgentInactive {
		t.Fatalf("agent should be inactive, is %s", u.Status)
	}
	if again := f.assign(); len(again) != 0 {
		t.Fatalf("no agent is free, yet: %v", again)
	}
	// The recent agent accepts c2 and closes it: capacity frees, c1 (older) goes before c3.
	f.accept(c2, recentAgent)
	f.must(f.s.CloseChat(f.ctx, c2, "agent"))
	if got := f.assign(); len(got) != 1 || got[c1] != recentAgent {
		t.Fatalf("freed capacity must go to the oldest waiting chat c1: %v (c3 %s)", got, c3)
	}
	// Accepting a chat offered to someone else is refused.
	if _, err := f.s.Accept(f.ctx, c1, oldAgent); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("accept of another agent's offer: %v", err)
	}
}

func TestAllAgentsAcceptRespectsCapacityAndStatus(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	a := f.agent("a", nil, false)
	c1, c2, c3 := f.chat("1"), f.chat("2"), f.chat("3")
	f.accept(c1, a)
	f.accept(c2, a)
	if _, err := f.s.Accept(f.ctx, c3, a); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("third chat over SimultaneousChats 2: %v", err)
	}
	f.accept(c1, a) // accepting one's own chat again is a no-op
	f.must(f.s.SetAgentStatus(f.ctx, a, domain.AgentInactive))
	f.must(f.s.CloseChat(f.ctx, c1, "agent"))
	if _, err := f.s.Accept(f.ctx, c3, a); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("inactive agent accepting: %v", err)
	}
	// Another agent trying the chat a holds learns who holds it.
	b := f.agent("b", nil, false)
	out, err := f.s.Accept(f.ctx, c2, b)
	if err != nil || out.Accepted || out.Status != domain.ChatInProgress || out.AgentID == nil || *out.AgentID != a {
		t.Fatalf("accept of a held chat: %+v %v", out, err)
	}
	if got := f.assign(); len(got) != 0 {
		t.Fatalf("the dispatcher never offers all_agents chats: %v", got)
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	chatID := f.chat("x")
	in := models.IngestInput{ChatID: chatID, ChannelID: f.ch.ID, Message: domain.InboundMessage{ConversationID: "x", SenderID: "cust-x", ExternalID: "m-x", Text: "hi"}}
	res, err := f.s.Ingest(f.ctx, in) // a retried activity: same chat
	f.must(err)
	if res.Stored || res.Duplicate || res.Chat.ChatID != chatID {
		t.Fatalf("retry of the same ingest: %+v", res)
	}
	in.ChatID, in.OpenChat = uuid.New(), true // the provider redelivers after the chat closed
	res, err = f.s.Ingest(f.ctx, in)
	f.must(err)
	if !res.Duplicate {
		t.Fatalf("redelivery must be a duplicate: %+v", res)
	}
	var chats, msgs, contacts int
	f.must(f.s.Raw(f.ctx, &chats, `SELECT count(*) FROM chats`))
	f.must(f.s.Raw(f.ctx, &msgs, `SELECT count(*) FROM messages`))
	f.must(f.s.Raw(f.ctx, &contacts, `SELECT count(*) FROM contacts`))
	if chats != 1 || msgs != 1 || contacts != 1 {
		t.Fatalf("rows: %d chats, %d messages, %d contacts; want 1 each", chats, msgs, contacts)
	}
	// A second conversation of the same sender reuses the contact.
	in2 := models.IngestInput{ChatID: uuid.New(), OpenChat: true, WorkflowID: "wf-y", ChannelID: f.ch.ID,
		Message: domain.InboundMessage{ConversationID: "y", SenderID: "cust-x", SenderName: "Renamed", ExternalID: "m-y", Text: "again"}}
	_, err = f.s.Ingest(f.ctx, in2)
	f.must(err)
	f.must(f.s.Raw(f.ctx, &contacts, `SELECT count(*) FROM contacts`))
	if contacts != 1 {
		t.Fatalf("contact must be reused, %d contacts", contacts)
	}
}

// A value PostgreSQL cannot store is a refusal (retrying cannot help), not an
// outage: work that hits one fails at once instead of retrying for ever.
func TestDataTheDatabaseRefusesIsInvalid(t *testing.T) {
	f := newFixture(t, domain.RuleAvailableAgent)
	err := f.s.CreateQueue(f.ctx, &models.Queue{Name: "bad \x00 name", RoutingRule: domain.RuleAllAgents})
	if !errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("got %v, want a domain.ErrInvalid", err)
	}
}
