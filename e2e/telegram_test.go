package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/telegram"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

// tgEnv is a stack whose Telegram provider talks to a fake Bot API.
type tgEnv struct {
	*env
	tg *fakeTelegram
}

func newTelegramEnv(t *testing.T) *tgEnv {
	tg := newFakeTelegram(t)
	st := testenv.NewStackWith(t, temporalClient, testenv.Options{TelegramURL: tg.srv.URL})
	e := adminEnv(t, st)
	return &tgEnv{env: e, tg: tg}
}

func (e *tgEnv) createChannel(queueID string, token string) testenv.Response {
	return e.Do("POST", "/api/v1/admin/channels", e.admin, map[string]any{
		"provider": "telegram", "name": "Support bot", "queue_id": queueID, "secret": token})
}

func (e *tgEnv) channel(queueID string) string {
	e.t.Helper()
	e.setting(models.SettingSiteURL, "https://chat.example.com")
	var ch api.ChannelDTO
	e.must(201, e.createChannel(queueID, tgToken), "create telegram channel").Decode(e.t, &ch)
	return ch.ID.String()
}

// update posts a Bot API update to the channel's webhook with its secret.
func (e *tgEnv) update(channelID string, update map[string]any) testenv.Response {
	body, _ := json.Marshal(update)
	secret := telegram.WebhookSecret(channels.Config{ID: channelID, Secret: tgToken})
	return e.Do("POST", "/webhooks/telegram/"+channelID, "", body, telegram.SecretHeader, secret)
}

var tgUpdateID = int64(5000)

func tgMessage(chatID int64, messageID int64, content map[string]any) map[string]any {
	tgUpdateID++
	msg := map[string]any{"message_id": messageID, "date": time.Now().Unix(),
		"from": map[string]any{"id": chatID, "is_bot": false, "first_name": "Ivan", "last_name": "Petrov", "username": "ivanp"},
		"chat": map[string]any{"id": chatID, "type": "private", "first_name": "Ivan"}}
	for k, v := range content {
		msg[k] = v
	}
	return map[string]any{"update_id": tgUpdateID, "message": msg}
}

func TestTelegramChannelRegistration(t *testing.T) {
	e := newTelegramEnv(t)
	q := e.queue("Support", domain.RuleAllAgents, 0)

	// No SiteUrl: a clear 4xx naming the setting, nothing saved, no webhook.
	p := problemOf(t, e.createChannel(q, tgToken))
	if p.Status != 422 || !strings.Contains(p.Detail, "SiteUrl") {
		t.Fatalf("missing SiteUrl: %+v", p)
	}
	e.setting(models.SettingSiteURL, "https://chat.example.com")
	// A token Telegram refuses.
	p = problemOf(t, e.createChannel(q, "999999:AAAwrongTokenWrongTokenWrongToken"))
	if p.Status != 422 || !strings.Contains(p.Detail, "token") {
		t.Fatalf("refused token: %+v", p)
	}
	// Not even shaped like a token: refused before Telegram is asked.
	calls := len(e.tg.snapshot().calls)
	if p := problemOf(t, e.createChannel(q, "not-a-token")); p.Status != 422 {
		t.Fatalf("malformed token: %+v", p)
	}
	if got := e.tg.snapshot(); len(got.calls) != calls || len(got.webhooks) != 0 {
		t.Fatalf("refused channels must not reach Telegram's setWebhook: %+v", got.webhooks)
	}
	if n := e.count(`SELECT count(*) FROM channels`); n != 0 {
		t.Fatalf("refused channels were saved: %d", n)
	}

	var ch api.ChannelDTO
	e.must(201, e.createChannel(q, tgToken), "create").Decode(t, &ch)
	got := e.tg.snapshot()
	if len(got.webhooks) != 1 {
		t.Fatalf("setWebhook calls: %d", len(got.webhooks))
	}
	wh := got.webhooks[0]
	wantSecret := telegram.WebhookSecret(channels.Config{ID: ch.ID.String(), Secret: tgToken})
	if wh["url"] != "https://chat.example.com/webhooks/telegram/"+ch.ID.String() || wh["secret_token"] != wantSecret {
		t.Fatalf("setWebhook params: %+v", wh)
	}
	if fmt.Sprint(wh["allowed_updates"]) != "[message edited_message callback_query my_chat_member]" {
		t.Fatalf("allowed_updates: %v", wh["allowed_updates"])
	}
	if bytes.Contains(e.Do("GET", "/api/v1/admin/channels/"+ch.ID.String(), e.admin, nil).Body, []byte(tgToken)) {
		t.Fatal("the bot token is returned by the API")
	}

	e.must(200, e.Do("PATCH", "/api/v1/admin/channels/"+ch.ID.String(), e.admin, map[string]any{"active": false}), "deactivate")
	if d := e.tg.snapshot().deletes; d != 1 {
		t.Fatalf("deactivating must delete the webhook, deletes=%d", d)
	}
	e.must(204, e.Do("DELETE", "/api/v1/admin/channels/"+ch.ID.String(), e.admin, nil), "delete")
}

func TestTelegramInboundTypesEditsDuplicatesAndSecret(t *testing.T) {
	e := newTelegramEnv(t)
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	const chat = int64(777000111)
	e.tg.addFile("photo-big", "photos/file_1.jpg", "image/jpeg", []byte("JPEG big"))
	e.tg.addFile("doc-1", "documents/file_2.pdf", "application/pdf", []byte("%PDF-1.4 fake"))
	e.tg.addFile("avatar", "photos/avatar.jpg", "image/jpeg", []byte("JPEG avatar"))
	e.tg.photos["777000111"] = []map[string]any{{"file_id": "avatar-small", "width": 160, "height": 160}, {"file_id": "avatar", "width": 640, "height": 640}}

	// A wrong or missing secret stores nothing.
	body, _ := json.Marshal(tgMessage(chat, 99, map[string]any{"text": "forged"}))
	if p := problemOf(t, e.Do("POST", "/webhooks/telegram/"+ch, "", body, telegram.SecretHeader, "wrong")); p.Status != 401 {
		t.Fatalf("wrong secret: %+v", p)
	}
	if p := problemOf(t, e.Do("POST", "/webhooks/telegram/"+ch, "", body)); p.Status != 401 {
		t.Fatalf("missing secret: %+v", p)
	}

	updates := []map[string]any{
		tgMessage(chat, 1, map[string]any{"text": "Hello"}),
		tgMessage(chat, 2, map[string]any{"caption": "my receipt", "photo": []map[string]any{
			{"file_id": "photo-small", "width": 90, "height": 90}, {"file_id": "photo-big", "width": 1280, "height": 960}, {"file_id": "photo-mid", "width": 320, "height": 240}}}),
		tgMessage(chat, 3, map[string]any{"document": map[string]any{"file_id": "doc-1", "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": 13}}),
		tgMessage(chat, 4, map[string]any{"voice": map[string]any{"file_id": "voice-1", "mime_type": "audio/ogg", "duration": 3}}),
		tgMessage(chat, 5, map[string]any{"audio": map[string]any{"file_id": "audio-1", "mime_type": "audio/mpeg"}}),
		tgMessage(chat, 6, map[string]any{"video": map[string]any{"file_id": "video-1", "mime_type": "video/mp4", "file_size": 30 << 20}}),
		tgMessage(chat, 7, map[string]any{"sticker": map[string]any{"file_id": "st-1", "emoji": "👍"}}),
		tgMessage(chat, 8, map[string]any{"location": map[string]any{"latitude": 55.751244, "longitude": 37.618423}}),
		tgMessage(chat, 9, map[string]any{"contact": map[string]any{"phone_number": "+100200300", "first_name": "Bob"}}),
	}
	for _, u := range updates {
		e.must(200, e.update(ch, u), "update")
	}
	// Delivered again: stored once.
	e.must(200, e.update(ch, updates[0]), "redelivery")
	// An update type omnichat does not handle: 200 and nothing stored.
	tgUpdateID++
	e.must(200, e.update(ch, map[string]any{"update_id": tgUpdateID, "callback_query": map[string]any{"id": "cb", "data": "x"}}), "callback_query")
	// The customer edits the first message.
	tgUpdateID++
	edit := map[string]any{"update_id": tgUpdateID, "edited_message": map[string]any{"message_id": 1, "date": time.Now().Unix(), "edit_date": time.Now().Unix(),
		"from": map[string]any{"id": chat, "is_bot": false, "first_name": "Ivan"}, "chat": map[string]any{"id": chat, "type": "private"}, "text": "Hello, edited"}}
	e.must(200, e.update(ch, edit), "edit")

	chatID := e.waitChat(alice, "waiting", "Ivan Petrov").ID.String()
	var page api.MessagePage
	testenv.Eventually(t, 15*time.Second, "all nine messages stored, edited, attachments settled", func() bool {
		e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/messages", alice.Token, nil), "conversation").Decode(t, &page)
		if len(page.Items) != 9 || page.Items[0].Text != "Hello, edited" {
			return false
		}
		for _, m := range page.Items {
			for _, a := range m.Attachments {
				if a.Status == domain.AttachmentPending {
					return false
				}
			}
		}
		return true
	})
	kinds := []string{}
	for _, m := range page.Items {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "text,photo,document,voice,audio,video,sticker,location,unsupported" {
		t.Fatalf("kinds: %v", kinds)
	}
	if page.Items[0].EditedAt == nil {
		t.Fatal("the edited message shows no edit")
	}
	if page.Items[1].Text != "my receipt" || page.Items[6].Text != "[sticker] 👍" || !strings.HasPrefix(page.Items[7].Text, "[location] 55.751244, 37.618423") {
		t.Fatalf("texts: %q %q %q", page.Items[1].Text, page.Items[6].Text, page.Items[7].Text)
	}
	// The photo is the largest size, fetched, stored and served by omnichat.
	photo := page.Items[1].Attachments[0]
	r := e.Do("GET", photo.URL, alice.Token, nil)
	if r.Status != 200 || string(r.Body) != "JPEG big" || r.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("photo: %d %q %s", r.Status, r.Body, r.Header.Get("Content-Type"))
	}
	doc := page.Items[2].Attachments[0]
	if doc.Name != "invoice.pdf" || doc.Status != domain.AttachmentStored {
		t.Fatalf("document: %+v", doc)
	}
	// Over the 20 MB cap: refused without downloading.
	video := page.Items[5].Attachments[0]
	if video.Status != domain.AttachmentFailed || video.FailReason == nil || !strings.Contains(*video.FailReason, "20 MB") {
		t.Fatalf("oversized video: %+v", video)
	}
	for _, id := range e.tg.snapshot().fileGets {
		if id == "video-1" {
			t.Fatal("an oversized file was requested from Telegram")
		}
	}
	// The contact's profile photo is stored; the bot token never reaches an agent.
	testenv.Eventually(t, 10*time.Second, "the profile photo is stored", func() bool {
		return e.count(`SELECT count(*) FROM contacts ct JOIN attachments a ON a.id = ct.photo_attachment_id WHERE a.status = 'stored'`) == 1
	})
	if c := e.chat(alice, chatID); c.ContactPhoto == "" {
		t.Fatal("the chat shows no contact photo")
	} else if r := e.Do("GET", c.ContactPhoto, alice.Token, nil); r.Status != 200 || string(r.Body) != "JPEG avatar" {
		t.Fatalf("contact photo: %d %q", r.Status, r.Body)
	}
	for _, path := range []string{"/api/v1/chats/" + chatID, "/api/v1/chats/" + chatID + "/messages", "/api/v1/chats?limit=100"} {
		if bytes.Contains(e.Do("GET", path, alice.Token, nil).Body, []byte(tgToken)) {
			t.Fatalf("%s exposes the bot token", path)
		}
	}
	e.recordHistory("chat-telegram-media", fmt.Sprintf("chat/%s/%d", ch, chat))
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = ? OR text = 'forged'`, fmt.Sprintf("%d:99", chat)); n != 0 {
		t.Fatalf("a webhook with a wrong or missing secret stored %d messages", n)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = ?`, fmt.Sprintf("%d:1", chat)); n != 1 {
		t.Fatalf("redelivered message stored %d times", n)
	}
	// Another queue's agent cannot fetch the file.
	bob := e.agent("bob")
	e.queue("Other", domain.RuleAllAgents, 0, bob)
	if p := problemOf(t, e.Do("GET", photo.URL, bob.Token, nil)); p.Status != 404 {
		t.Fatalf("attachment of another queue's chat: %+v", p)
	}
}

func TestTelegramSendingPacesRetriesAndFailsPermanently(t *testing.T) {
	e := newTelegramEnv(t)
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAllAgents, 0, alice)
	ch := e.channel(q)
	e.activate(alice)
	const chat = int64(4242)
	e.must(200, e.update(ch, tgMessage(chat, 1, map[string]any{"text": "hi"})), "inbound")
	chatID := e.waitChat(alice, "waiting", "").ID.String()
	e.must(200, e.Do("POST", "/api/v1/chats/"+chatID+"/accept", alice.Token, nil), "accept")

	// Telegram throttles the first send: it waits retry_after, then sends all three in order, paced.
	e.tg.failNextSend(tgError{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1})
	start := time.Now()
	for _, text := range []string{"one", "two", "three"} {
		e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": text}), "send "+text)
	}
	testenv.Eventually(t, 20*time.Second, "three messages reach Telegram", func() bool { return len(e.tg.snapshot().sends) == 3 })
	sends := e.tg.snapshot().sends
	for i, want := range []string{"one", "two", "three"} {
		if sends[i].Text != want || sends[i].ChatID != "4242" {
			t.Fatalf("send %d: %+v", i, sends[i])
		}
	}
	if d := sends[0].At.Sub(start); d < 900*time.Millisecond {
		t.Fatalf("the first send came %s after the 429, before retry_after", d)
	}
	for i := 1; i < 3; i++ {
		if gap := sends[i].At.Sub(sends[i-1].At); gap < 900*time.Millisecond {
			t.Fatalf("messages %d and %d only %s apart; Telegram asks for about one per second per chat", i-1, i, gap)
		}
	}

	// Blocked by the user: failed with the reason, not retried.
	e.tg.failNextSend(tgError{Code: 403, Description: "Forbidden: bot was blocked by the user"})
	calls := len(e.tg.snapshot().calls)
	var m api.MessageDTO
	e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": "are you there?"}), "send").Decode(t, &m)
	testenv.Eventually(t, 10*time.Second, "the message fails with Telegram's reason", func() bool {
		got, err := e.Store.GetMessage(t.Context(), m.ID)
		return err == nil && got.Status == domain.MsgFailed && got.FailReason != nil && strings.Contains(*got.FailReason, "blocked by the user")
	})
	if n := len(e.tg.snapshot().calls) - calls; n != 1 {
		t.Fatalf("a permanent refusal was tried %d times", n)
	}

	// An attachment goes out with sendDocument.
	body, ct := fileForm("the invoice", "invoice.pdf", "application/pdf", []byte("%PDF-1.4 invoice"))
	var sent api.MessageDTO
	e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, body, "Content-Type", ct), "send file").Decode(t, &sent)
	if len(sent.Attachments) != 1 || sent.Attachments[0].Name != "invoice.pdf" || sent.Kind != "document" {
		t.Fatalf("sent message: %+v", sent)
	}
	testenv.Eventually(t, 10*time.Second, "the file reaches Telegram", func() bool {
		s := e.tg.snapshot().sends
		last := s[len(s)-1]
		return last.Method == "sendDocument" && string(last.File) == "%PDF-1.4 invoice" && last.FileName == "invoice.pdf" && last.Text == "the invoice"
	})
	// A forbidden media type is refused before anything is stored.
	body, ct = fileForm("", "x.exe", "application/x-msdownload", []byte("MZ"))
	if p := problemOf(t, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, body, "Content-Type", ct)); p.Status != 415 {
		t.Fatalf("forbidden upload: %+v", p)
	}
}
