package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

// acceptedChat returns a chat alice has accepted on an all_agents queue.
func acceptedChat(e *env, a agent, ch, conv string) string {
	e.t.Helper()
	e.must(200, e.inbound(ch, conv, conv+"-1", "hello from "+conv), "inbound")
	id := e.waitChat(a, "waiting", "Customer "+conv).ID.String()
	e.must(200, e.Do("POST", "/api/v1/chats/"+id+"/accept", a.Token, nil), "accept")
	return id
}

// A retried POST with the same Idempotency-Key sends once.
func TestSendWithIdempotencyKeySendsOnce(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	id := acceptedChat(e, alice, ch, "idem")

	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, map[string]any{"text": "only once"}, "Idempotency-Key", "key-1")
			if r.Status != 201 {
				t.Errorf("send: %d %s", r.Status, r.Body)
				return
			}
			var m api.MessageDTO
			r.Decode(t, &m)
			ids[i] = m.ID.String()
		}(i)
	}
	wg.Wait()
	for _, got := range ids {
		if got != ids[0] {
			t.Fatalf("retries answered different messages: %v", ids)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the reply is delivered", func() bool { return len(e.out.got()) >= 1 })
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, map[string]any{"text": "a new one"}, "Idempotency-Key", "key-2"), "second send")
	testenv.Eventually(t, 10*time.Second, "the second reply is delivered", func() bool { return len(e.out.got()) == 2 })
	e.recordHistory("chat-idempotent-send", "chat/"+ch+"/idem")
	if n := e.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); n != 2 {
		t.Fatalf("want 2 outbound rows, got %d", n)
	}
	if got := e.out.got(); got[0].Text != "only once" || got[1].Text != "a new one" {
		t.Fatalf("delivery order: %+v", got)
	}
}

// A file sent on the API channel reaches the outbound URL inside the signed JSON.
func TestAPIChannelCarriesFiles(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	id := acceptedChat(e, alice, ch, "file")
	body, ct := fileForm("your receipt", "receipt.pdf", "application/pdf", []byte("%PDF-1.4 receipt"))
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, body, "Content-Type", ct), "send file")
	testenv.Eventually(t, 10*time.Second, "the file reaches the outbound URL", func() bool {
		for _, r := range e.out.got() {
			if r.Attachment != nil && r.Attachment.Name == "receipt.pdf" && string(r.Attachment.Content) == "%PDF-1.4 receipt" && r.Text == "your receipt" {
				return true
			}
		}
		return false
	})
}

// A reply the endpoint refuses for good is marked failed with the reason, once.
func TestPermanentSendFailureIsShownToTheAgent(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	id := acceptedChat(e, alice, ch, "fail")
	e.out.refuseWith(403)
	var m api.MessageDTO
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, map[string]any{"text": "blocked"}), "send").Decode(t, &m)
	testenv.Eventually(t, 10*time.Second, "the message is failed with a reason", func() bool {
		var page api.MessagePage
		e.must(200, e.Do("GET", "/api/v1/chats/"+id+"/messages", alice.Token, nil), "conversation").Decode(t, &page)
		last := page.Items[len(page.Items)-1]
		return last.ID == m.ID && last.Status == domain.MsgFailed && last.FailReason != nil && strings.Contains(*last.FailReason, "403")
	})
	if len(e.out.got()) != 0 {
		t.Fatal("a refused reply must not be recorded as delivered")
	}
}

func TestTransferToQueueAndToAgent(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.agent("alice"), e.agent("bob"), e.agent("carol")
	q1 := e.queue("First line", domain.RuleAllAgents, 0, alice, bob)
	q2 := e.queue("Second line", domain.RuleAvailableAgent, 0, carol)
	ch := e.channel(q1)
	for _, a := range []agent{alice, bob, carol} {
		e.activate(a)
	}
	id := acceptedChat(e, alice, ch, "tr")

	// Only the assigned agent may transfer.
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+id+"/transfer", bob.Token, map[string]any{"agent_id": bob.ID})); p.Status != 403 {
		t.Fatalf("transfer by a colleague: %+v", p)
	}
	// To an agent of the queue.
	e.must(200, e.Do("POST", "/api/v1/chats/"+id+"/transfer", alice.Token, map[string]any{"agent_id": bob.ID}), "transfer to bob")
	if c := e.chat(bob, id); c.Status != domain.ChatInProgress || c.AgentID == nil || c.AgentID.String() != bob.ID {
		t.Fatalf("after transfer to bob: %+v", c)
	}
	// To an agent outside the queue: refused.
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+id+"/transfer", bob.Token, map[string]any{"agent_id": carol.ID})); p.Status != 422 {
		t.Fatalf("transfer to an agent outside the queue: %+v", p)
	}
	// Both at once: refused with the field named.
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+id+"/transfer", bob.Token, map[string]any{"agent_id": carol.ID, "queue_id": q2})); p.Status != 422 {
		t.Fatalf("queue and agent at once: %+v", p)
	}
	// To another queue: routed afresh there, to carol.
	e.must(200, e.Do("POST", "/api/v1/chats/"+id+"/transfer", bob.Token, map[string]any{"queue_id": q2}), "transfer to queue")
	offered := e.waitOffer(carol)
	if offered.ID.String() != id || offered.QueueID.String() != q2 {
		t.Fatalf("carol was offered %+v", offered)
	}
	if p := problemOf(t, e.Do("GET", "/api/v1/chats/"+id, alice.Token, nil)); p.Status != 404 {
		t.Fatalf("the chat left alice's queues: %+v", p)
	}
	e.recordHistory("chat-transfers", "chat/"+ch+"/tr")
}

func TestUnreadCountsAndMarkRead(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.agent("alice"), e.agent("bob")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice, bob))
	e.activate(alice)
	id := acceptedChat(e, alice, ch, "u")
	e.must(200, e.inbound(ch, "u", "u-2", "are you there?"), "second message")
	count := func(path string) int {
		var c api.CountDTO
		e.must(200, e.Do("GET", path, alice.Token, nil), path).Decode(t, &c)
		return c.Count
	}
	testenv.Eventually(t, 10*time.Second, "two unread messages", func() bool { return count("/api/v1/messages/unread-count") == 2 })
	if n := count("/api/v1/chats/unread-count"); n != 1 {
		t.Fatalf("unread chats %d, want 1", n)
	}
	// A queue colleague sees the chat; their reading it succeeds but does not
	// clear alice's unread messages.
	e.must(200, e.Do("GET", "/api/v1/chats/"+id, bob.Token, nil), "bob sees the chat")
	e.must(204, e.Do("POST", "/api/v1/chats/"+id+"/read", bob.Token, nil), "bob marks read")
	if n := count("/api/v1/messages/unread-count"); n != 2 {
		t.Fatalf("after others read the chat: %d unread messages for alice, want 2 (a colleague's read must not count)", n)
	}
	e.must(204, e.Do("POST", "/api/v1/chats/"+id+"/read", alice.Token, nil), "mark read")
	if n := count("/api/v1/messages/unread-count"); n != 0 {
		t.Fatalf("after MarkChatAsRead: %d unread messages", n)
	}
	if n := count("/api/v1/chats/unread-count"); n != 0 {
		t.Fatalf("after MarkChatAsRead: %d unread chats", n)
	}
}

// An agent at SimultaneousChats sees no new chat of an all_agents queue.
func TestAgentAtLimitSeesNoNewChats(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Q", domain.RuleAllAgents, 0, alice))
	e.setting(models.SettingSimultaneousChats, "1")
	e.activate(alice)
	acceptedChat(e, alice, ch, "one")
	e.must(200, e.inbound(ch, "two", "two-1", "me too"), "inbound two")
	testenv.Eventually(t, 10*time.Second, "second chat exists", func() bool { return e.count(`SELECT count(*) FROM chats`) == 2 })
	if w := e.chats(alice, "waiting"); len(w) != 0 {
		t.Fatalf("an agent at the limit must not see new chats: %+v", w)
	}
	e.setting(models.SettingSimultaneousChats, "2")
	if w := e.chats(alice, "waiting"); len(w) != 1 {
		t.Fatalf("below the limit again the chat shows: %+v", w)
	}
}

func TestAdminChannelsTokensRolesAndSettings(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	q := e.queue("Q", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)

	// A channel with chats cannot be deleted; deactivated, its webhook says so.
	acceptedChat(e, alice, ch, "d")
	if p := problemOf(t, e.Do("DELETE", "/api/v1/admin/channels/"+ch, e.admin, nil)); p.Status != 409 {
		t.Fatalf("delete with chats: %+v", p)
	}
	var dto api.ChannelDTO
	e.must(200, e.Do("PATCH", "/api/v1/admin/channels/"+ch, e.admin, map[string]any{"active": false}), "deactivate").Decode(t, &dto)
	if dto.Active {
		t.Fatal("channel still active")
	}
	before := e.count(`SELECT count(*) FROM messages`)
	if p := problemOf(t, e.inbound(ch, "d2", "d2-1", "anyone?")); p.Status != 409 || !strings.Contains(p.Detail, "inactive") {
		t.Fatalf("inactive channel webhook: %+v", p)
	}
	if e.count(`SELECT count(*) FROM messages`) != before {
		t.Fatal("inactive channel stored a message")
	}
	// A channel without chats can be deleted.
	empty := e.channel(q)
	e.must(204, e.Do("DELETE", "/api/v1/admin/channels/"+empty, e.admin, nil), "delete empty channel")

	// Tokens: listed without values, revocable.
	var toks []api.TokenDTO
	e.must(200, e.Do("GET", "/api/v1/admin/users/"+alice.ID+"/tokens", e.admin, nil), "list tokens").Decode(t, &toks)
	if len(toks) != 1 || toks[0].Token != "" {
		t.Fatalf("tokens: %+v", toks)
	}
	e.must(204, e.Do("DELETE", "/api/v1/admin/users/"+alice.ID+"/tokens/"+toks[0].ID.String(), e.admin, nil), "revoke")
	if p := problemOf(t, e.Do("GET", "/api/v1/me", alice.Token, nil)); p.Status != 401 {
		t.Fatalf("revoked token still works: %+v", p)
	}

	// CanManageChats through a role.
	bob := e.agent("bob")
	if p := problemOf(t, e.Do("GET", "/api/v1/admin/settings", bob.Token, nil)); p.Status != 403 {
		t.Fatalf("bob without permission: %+v", p)
	}
	var role api.RoleDTO
	e.must(201, e.Do("POST", "/api/v1/admin/roles", e.admin, map[string]any{"name": "Supervisors", "can_manage_chats": true}), "role").Decode(t, &role)
	e.must(204, e.Do("POST", "/api/v1/admin/roles/"+role.ID.String()+"/members", e.admin, map[string]any{"user_id": bob.ID}), "member")
	var settings []api.SettingDTO
	e.must(200, e.Do("GET", "/api/v1/admin/settings", bob.Token, nil), "settings via role").Decode(t, &settings)
	if len(settings) != len(models.SettingDefs) || settings[0].Code != models.SettingAcceptTimeout || settings[0].Value != "5" {
		t.Fatalf("settings: %+v", settings)
	}

	// Settings: validation, decimals, reset.
	if p := problemOf(t, e.Do("PUT", "/api/v1/admin/settings/SimultaneousChats", e.admin, map[string]any{"value": "zero"})); p.Status != 422 {
		t.Fatalf("bad setting: %+v", p)
	}
	e.setting(models.SettingAcceptTimeout, "0.05")
	rs, err := e.Store.GetRoutingSettings(context.Background())
	if err != nil || rs.AcceptTimeout != 3*time.Second {
		t.Fatalf("0.05 minutes must be 3 s: %v %v", rs.AcceptTimeout, err)
	}
	e.must(200, e.Do("DELETE", "/api/v1/admin/settings/"+models.SettingAcceptTimeout, e.admin, nil), "reset")
	if rs, _ := e.Store.GetRoutingSettings(context.Background()); rs.AcceptTimeout != 5*time.Minute {
		t.Fatalf("reset must restore 5 minutes: %v", rs.AcceptTimeout)
	}

	// Notification sound: built-in, uploaded, cleared.
	def := e.Do("GET", "/api/v1/notification-sound", bob.Token, nil)
	if def.Status != 200 || def.Header.Get("Content-Type") != "audio/wav" || string(def.Body[:4]) != "RIFF" {
		t.Fatalf("default sound: %d %s", def.Status, def.Header.Get("Content-Type"))
	}
	e.must(200, e.Do("PUT", "/api/v1/admin/settings/OmniChatNotificationSound", e.admin, []byte("ID3-fake-mp3"), "Content-Type", "audio/mpeg"), "upload sound")
	up := e.Do("GET", "/api/v1/notification-sound", bob.Token, nil)
	if up.Header.Get("Content-Type") != "audio/mpeg" || string(up.Body) != "ID3-fake-mp3" {
		t.Fatalf("uploaded sound not served: %s", up.Header.Get("Content-Type"))
	}
	if p := problemOf(t, e.Do("PUT", "/api/v1/admin/settings/OmniChatNotificationSound", e.admin, []byte("text"), "Content-Type", "text/plain")); p.Status != 415 {
		t.Fatalf("non-audio upload: %+v", p)
	}
	e.must(200, e.Do("DELETE", "/api/v1/admin/settings/OmniChatNotificationSound", e.admin, nil), "clear sound")
	if again := e.Do("GET", "/api/v1/notification-sound", bob.Token, nil); again.Header.Get("Content-Type") != "audio/wav" {
		t.Fatal("clearing must restore the default sound")
	}
}
