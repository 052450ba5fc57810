package e2e

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels/facebook"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

type fbEnv struct {
	*env
	fb *fakeGraph
}

func newMessengerEnv(t *testing.T) *fbEnv {
	fb := newFakeGraph(t)
	st := testenv.NewStackWith(t, temporalClient, testenv.Options{FacebookURL: fb.url()})
	return &fbEnv{env: adminEnv(t, st), fb: fb}
}

func (e *fbEnv) createChannel(queueID, token string) testenv.Response {
	return e.Do("POST", "/api/v1/admin/channels", e.admin, map[string]any{
		"provider": "facebook", "name": "Omni Shop page", "queue_id": queueID, "secret": token,
		"settings": map[string]string{"page_id": fbPageID, "app_id": fbOurApp, "app_secret": fbAppSecret,
			"verify_token": fbVerify, "bot_app_id": fbBotApp}})
}

func (e *fbEnv) channel(queueID string) string {
	e.t.Helper()
	var ch api.ChannelDTO
	e.must(201, e.createChannel(queueID, fbPageToken), "create facebook channel").Decode(e.t, &ch)
	return ch.ID.String()
}

// post sends a Messenger webhook body, signed with the app secret.
func (e *fbEnv) post(channelID string, body any) testenv.Response {
	b, _ := json.Marshal(body)
	return e.Do("POST", "/webhooks/facebook/"+channelID, "", b, facebook.SignatureHeader, facebook.Sign(fbAppSecret, b))
}

func page(entries ...map[string]any) map[string]any {
	return map[string]any{"object": "page", "entry": entries}
}

func entry(field string, events ...any) map[string]any {
	return map[string]any{"id": fbPageID, "time": time.Now().UnixMilli(), field: events}
}

func fbMessage(psid, mid, text string, attachments ...map[string]any) map[string]any {
	msg := map[string]any{"mid": mid}
	if text != "" {
		msg["text"] = text
	}
	if len(attachments) > 0 {
		msg["attachments"] = attachments
	}
	return map[string]any{"sender": map[string]string{"id": psid}, "recipient": map[string]string{"id": fbPageID},
		"timestamp": time.Now().UnixMilli(), "message": msg}
}

func TestMessengerVerificationBatchesAttachmentsAndProfiles(t *testing.T) {
	e := newMessengerEnv(t)
	alice := e.agent("alice")
	q := e.queue("Shop", domain.RuleAllAgents, 0, alice)
	e.activate(alice)

	if p := problemOf(t, e.createChannel(q, "EAAGwrongTokenWrongTokenWrongToken")); p.Status != 422 || !strings.Contains(p.Detail, "access token") {
		t.Fatalf("refused token: %+v", p)
	}
	ch := e.channel(q)
	if _, _, subscribed := e.fb.snapshot(); subscribed != 1 {
		t.Fatalf("the app must be subscribed to the page once, got %d", subscribed)
	}
	var dto api.ChannelDTO
	r := e.must(200, e.Do("GET", "/api/v1/admin/channels/"+ch, e.admin, nil), "get channel")
	r.Decode(t, &dto)
	if bytes.Contains(r.Body, []byte(fbAppSecret)) || bytes.Contains(r.Body, []byte(fbVerify)) || bytes.Contains(r.Body, []byte(fbPageToken)) {
		t.Fatalf("secrets returned: %s", r.Body)
	}
	if strings.Join(dto.SecretSettingsSet, ",") != "app_secret,verify_token" || dto.Settings["page_id"] != fbPageID {
		t.Fatalf("channel settings: %+v", dto)
	}

	// GET verification.
	q1 := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {fbVerify}, "hub.challenge": {"1158201444"}}
	if r := e.Do("GET", "/webhooks/facebook/"+ch+"?"+q1.Encode(), "", nil); r.Status != 200 || string(r.Body) != "1158201444" {
		t.Fatalf("challenge: %d %s", r.Status, r.Body)
	}
	q1.Set("hub.verify_token", "guess")
	if p := problemOf(t, e.Do("GET", "/webhooks/facebook/"+ch+"?"+q1.Encode(), "", nil)); p.Status != 403 {
		t.Fatalf("wrong verify token: %+v", p)
	}

	// A bad signature stores nothing.
	body, _ := json.Marshal(page(entry("messaging", fbMessage("9001", "m_forged", "forged"))))
	if p := problemOf(t, e.Do("POST", "/webhooks/facebook/"+ch, "", body, facebook.SignatureHeader, facebook.Sign("wrong-secret-0123456789", body))); p.Status != 401 {
		t.Fatalf("bad signature: %+v", p)
	}

	if n := e.count(`SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM chats)`); n != 0 {
		t.Fatalf("a webhook with a bad signature wrote %d rows", n)
	}
	e.fb.mu.Lock()
	e.fb.files["photo.jpg"] = fbFile{MediaType: "image/jpeg", Content: []byte("JPEG from cdn")}
	e.fb.files["anna.jpg"] = fbFile{MediaType: "image/jpeg", Content: []byte("JPEG anna")}
	e.fb.profiles["9001"] = map[string]any{"first_name": "Anna", "last_name": "Smith", "profile_pic": e.fb.srv.URL + "/cdn/anna.jpg"}
	e.fb.mu.Unlock()

	// One POST, two entries, several events: a malformed event does not drop the others.
	e.must(200, e.post(ch, page(
		entry("messaging",
			fbMessage("9001", "m_a1", "Hi, where is my order?"),
			map[string]any{"sender": "not-an-object", "message": 42},
			map[string]any{"sender": map[string]string{"id": "9001"}, "recipient": map[string]string{"id": fbPageID},
				"delivery": map[string]any{"watermark": time.Now().UnixMilli()}}),
		entry("messaging",
			fbMessage("9002", "m_b1", "", map[string]any{"type": "image", "payload": map[string]string{"url": e.fb.srv.URL + "/cdn/photo.jpg"}}),
			fbMessage("9002", "m_b2", "", map[string]any{"type": "file", "payload": map[string]string{"url": "http://127.0.0.1:1/internal/secret.pdf"}}),
			fbMessage("9001", "m_a1", "Hi, where is my order?")), // delivered again
	)), "batch")

	anna := e.waitChat(alice, "waiting", "Anna Smith") // the Graph profile replaced the fallback name
	other := e.waitChat(alice, "waiting", "Customer 9002")
	var msgs api.MessagePage
	testenv.Eventually(t, 10*time.Second, "attachments settled", func() bool {
		e.must(200, e.Do("GET", "/api/v1/chats/"+other.ID.String()+"/messages", alice.Token, nil), "conversation").Decode(t, &msgs)
		return len(msgs.Items) == 2 && msgs.Items[0].Attachments[0].Status != domain.AttachmentPending && msgs.Items[1].Attachments[0].Status != domain.AttachmentPending
	})
	if r := e.Do("GET", msgs.Items[0].Attachments[0].URL, alice.Token, nil); r.Status != 200 || string(r.Body) != "JPEG from cdn" {
		t.Fatalf("image: %d %s", r.Status, r.Body)
	}
	bad := msgs.Items[1].Attachments[0]
	if bad.Status != domain.AttachmentFailed || bad.FailReason == nil || !strings.Contains(*bad.FailReason, "not one of the provider's") {
		t.Fatalf("attachment from a non-Meta host: %+v", bad)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = 'm_a1'`); n != 1 {
		t.Fatalf("redelivered mid stored %d times", n)
	}
	testenv.Eventually(t, 10*time.Second, "Anna's profile photo is stored", func() bool {
		return e.count(`SELECT count(*) FROM contacts ct JOIN attachments a ON a.id = ct.photo_attachment_id WHERE ct.external_id = '9001' AND a.status = 'stored'`) == 1
	})
	_ = anna
}

func TestMessengerSendEchoReceiptsAndReplyWindow(t *testing.T) {
	e := newMessengerEnv(t)
	alice := e.agent("alice")
	q := e.queue("Shop", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	e.must(200, e.post(ch, page(entry("messaging", fbMessage("9100", "m_c1", "hello")))), "inbound")
	c := e.waitChat(alice, "waiting", "Customer 9100")
	id := c.ID.String()
	e.must(200, e.Do("POST", "/api/v1/chats/"+id+"/accept", alice.Token, nil), "accept")

	var m api.MessageDTO
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, map[string]any{"text": "Your order ships today"}), "send").Decode(t, &m)
	var sent *models.Message
	testenv.Eventually(t, 10*time.Second, "the reply is sent with its mid", func() bool {
		got, err := e.Store.GetMessage(t.Context(), m.ID)
		sent = got
		return err == nil && got.Status == domain.MsgSent && got.ExternalID != nil
	})
	sends, _, _ := e.fb.snapshot()
	if len(sends) != 1 || sends[0].Recipient != "9100" || sends[0].Text != "Your order ships today" || sends[0].MessagingType != "RESPONSE" {
		t.Fatalf("Send API calls: %+v", sends)
	}
	inbound := e.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`)
	// The echo of our own message is linked, never a customer message; then delivered, then read.
	echo := map[string]any{"sender": map[string]string{"id": fbPageID}, "recipient": map[string]string{"id": "9100"}, "timestamp": time.Now().UnixMilli(),
		"message": map[string]any{"mid": *sent.ExternalID, "text": "Your order ships today", "is_echo": true, "app_id": 555000111}}
	e.must(200, e.post(ch, page(entry("messaging", echo))), "echo")
	later := time.Now().Add(time.Second).UnixMilli()
	e.must(200, e.post(ch, page(entry("messaging", map[string]any{"sender": map[string]string{"id": "9100"}, "recipient": map[string]string{"id": fbPageID},
		"delivery": map[string]any{"watermark": later}}))), "delivery")
	if got, _ := e.Store.GetMessage(t.Context(), m.ID); got.Status != domain.MsgDelivered {
		t.Fatalf("after the delivery watermark: %s", got.Status)
	}
	e.must(200, e.post(ch, page(entry("messaging", map[string]any{"sender": map[string]string{"id": "9100"}, "recipient": map[string]string{"id": fbPageID},
		"read": map[string]any{"watermark": later}}))), "read")
	if got, _ := e.Store.GetMessage(t.Context(), m.ID); got.Status != domain.MsgRead {
		t.Fatalf("after the read watermark: %s", got.Status)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != inbound {
		t.Fatalf("the echo was stored as a customer message")
	}

	// Outside the 24-hour window: failed with a reason the agent can read, not retried.
	e.fb.mu.Lock()
	e.fb.failSend = []fbError{{Status: 400, Code: 10, Subcode: 2018278, Message: "(#10) This message is sent outside of allowed window."}}
	e.fb.mu.Unlock()
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, map[string]any{"text": "late"}), "late send").Decode(t, &m)
	testenv.Eventually(t, 10*time.Second, "the late reply fails with the window reason", func() bool {
		got, err := e.Store.GetMessage(t.Context(), m.ID)
		return err == nil && got.Status == domain.MsgFailed && got.FailReason != nil && strings.Contains(*got.FailReason, "24-hour")
	})
	if sends, _, _ := e.fb.snapshot(); len(sends) != 1 {
		t.Fatalf("a refused send was retried: %d sends", len(sends))
	}

	// A file goes out as an attachment upload.
	body, ct := fileForm("", "label.png", "image/png", []byte("\x89PNG label"))
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, body, "Content-Type", ct), "send file")
	testenv.Eventually(t, 10*time.Second, "the file reaches the Send API", func() bool {
		sends, _, _ := e.fb.snapshot()
		last := sends[len(sends)-1]
		return len(sends) == 2 && last.AttachmentType == "image" && string(last.File) == "\x89PNG label" && last.FileName == "label.png"
	})

	// A file whose caption Facebook refuses: the message is failed with the
	// reason, not reported sent, and the file is not uploaded again.
	e.fb.mu.Lock()
	e.fb.failText = []fbError{{Status: 500, Code: 2, Message: "Service temporarily unavailable"}}
	e.fb.mu.Unlock()
	body, ct = fileForm("the label for your parcel", "label2.png", "image/png", []byte("\x89PNG label 2"))
	e.must(201, e.Do("POST", "/api/v1/chats/"+id+"/messages", alice.Token, body, "Content-Type", ct), "send file with caption").Decode(t, &m)
	testenv.Eventually(t, 30*time.Second, "the captioned file's message fails with the caption's reason", func() bool {
		got, err := e.Store.GetMessage(t.Context(), m.ID)
		return err == nil && got.Status == domain.MsgFailed && got.FailReason != nil && strings.Contains(*got.FailReason, "caption")
	})
	files := 0
	sends, _, _ = e.fb.snapshot()
	for _, s := range sends {
		if s.FileName == "label2.png" {
			files++
		}
		if s.Text == "the label for your parcel" {
			t.Fatalf("the refused caption was recorded as sent: %+v", s)
		}
	}
	if files != 1 {
		t.Fatalf("the file was uploaded %d times, want once", files)
	}
}

func TestMessengerHandoverProtocol(t *testing.T) {
	e := newMessengerEnv(t)
	alice := e.agent("alice")
	q := e.queue("Shop", domain.RuleAvailableAgent, 0, alice)
	ch := e.channel(q)
	e.activate(alice)

	// While the bot owns the thread, events come as standby: stored, no agent, not routed.
	e.must(200, e.post(ch, page(entry("standby", fbMessage("9200", "m_s1", "I want to talk to a human")))), "standby")
	testenv.Eventually(t, 10*time.Second, "the bot-owned chat is stored", func() bool {
		return e.count(`SELECT count(*) FROM chats WHERE status = 'bot' AND agent_id IS NULL`) == 1
	})
	if offered := e.chats(alice, "offered"); len(offered) != 0 {
		t.Fatalf("a bot-owned chat was offered: %+v", offered)
	}
	// The queue's agents and admins (of any queue) see it, read-only.
	if bots := e.chats(alice, "bot"); len(bots) != 1 || bots[0].AgentID != nil || bots[0].ContactName == "" {
		t.Fatalf("the queue's agent lists bot-owned chats: %+v", bots)
	}
	adminSees := e.chats(agent{Token: e.admin}, "bot")
	if len(adminSees) != 1 {
		t.Fatalf("an admin who serves no queue lists bot-owned chats: %+v", adminSees)
	}
	var standby api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+adminSees[0].ID.String()+"/messages", e.admin, nil), "admin reads a bot chat").Decode(t, &standby)
	if len(standby.Items) != 1 {
		t.Fatalf("the bot chat's conversation: %+v", standby.Items)
	}
	outsider := e.agent("outsider")
	e.queue("Elsewhere", domain.RuleAvailableAgent, 0, outsider)
	if bots := e.chats(outsider, "bot"); len(bots) != 0 {
		t.Fatalf("an agent of another queue lists bot-owned chats: %+v", bots)
	}
	// The bot passes the thread to omnichat: routing starts.
	pass := map[string]any{"sender": map[string]string{"id": "9200"}, "recipient": map[string]string{"id": fbPageID}, "timestamp": time.Now().UnixMilli(),
		"pass_thread_control": map[string]any{"previous_owner_app_id": fbBotApp, "new_owner_app_id": fbOurApp, "metadata": "human requested"}}
	e.must(200, e.post(ch, page(entry("messaging", pass))), "pass_thread_control")
	c := e.waitOffer(alice)
	e.must(200, e.Do("POST", "/api/v1/chats/"+c.ID.String()+"/accept", alice.Token, nil), "accept")
	var msgs api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+c.ID.String()+"/messages", alice.Token, nil), "conversation").Decode(t, &msgs)
	if len(msgs.Items) != 1 || msgs.Items[0].Text != "I want to talk to a human" {
		t.Fatalf("the standby message belongs to the chat: %+v", msgs.Items)
	}
	// On close, the conversation goes back to the bot app.
	e.must(200, e.Do("POST", "/api/v1/chats/"+c.ID.String()+"/close", alice.Token, nil), "close")
	testenv.Eventually(t, 10*time.Second, "pass_thread_control back to the bot", func() bool {
		_, passes, _ := e.fb.snapshot()
		if len(passes) != 1 {
			return false
		}
		rcpt, _ := passes[0]["recipient"].(map[string]any)
		return passes[0]["target_app_id"] == fbBotApp && rcpt["id"] == "9200"
	})

	e.recordHistory("chat-messenger-handover", "chat/"+ch+"/9200")

	// A bot taking the thread back while an agent has it closes the chat.
	e.must(200, e.post(ch, page(entry("messaging", fbMessage("9300", "m_t1", "hello")))), "inbound")
	c2 := e.waitOffer(alice)
	e.must(200, e.Do("POST", "/api/v1/chats/"+c2.ID.String()+"/accept", alice.Token, nil), "accept")
	take := map[string]any{"sender": map[string]string{"id": "9300"}, "recipient": map[string]string{"id": fbPageID}, "timestamp": time.Now().UnixMilli(),
		"take_thread_control": map[string]any{"previous_owner_app_id": fbOurApp, "new_owner_app_id": fbBotApp, "metadata": "bot takes over"}}
	e.must(200, e.post(ch, page(entry("messaging", take))), "take_thread_control")
	testenv.Eventually(t, 10*time.Second, "the chat closes with reason bot", func() bool {
		got := e.chat(alice, c2.ID.String())
		return got.Status == domain.ChatClosed && got.CloseReason != nil && *got.CloseReason == "bot"
	})
}
