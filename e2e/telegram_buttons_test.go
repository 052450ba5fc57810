package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
)

func tgButtonPress(chatID int64, queryID, data string) map[string]any {
	tgUpdateID++
	return map[string]any{"update_id": tgUpdateID, "callback_query": map[string]any{
		"id": queryID, "chat_instance": "42", "data": data,
		"from": map[string]any{"id": chatID, "is_bot": false, "first_name": "Ivan", "last_name": "Petrov"},
		"message": map[string]any{"message_id": 900, "date": time.Now().Unix(), "text": "Ship today?",
			"chat": map[string]any{"id": chatID, "type": "private"},
			"reply_markup": map[string]any{"inline_keyboard": [][]map[string]any{{
				{"text": "Yes, ship it", "callback_data": "ship:yes"}, {"text": "No", "callback_data": "ship:no"}}}}}}}
}

func tgMembership(chatID int64, status string) map[string]any {
	tgUpdateID++
	bot := map[string]any{"id": 123456789, "is_bot": true, "first_name": "Omni"}
	return map[string]any{"update_id": tgUpdateID, "my_chat_member": map[string]any{
		"chat": map[string]any{"id": chatID, "type": "private"}, "date": time.Now().Unix(),
		"from":            map[string]any{"id": chatID, "is_bot": false, "first_name": "Ivan"},
		"old_chat_member": map[string]any{"user": bot, "status": "member"},
		"new_chat_member": map[string]any{"user": bot, "status": status}}}
}

// A customer pressing an inline button writes "[button] <label>" into the
// chat, once however often Telegram delivers it, and the button stops
// spinning (answerCallbackQuery). A customer blocking the bot is recorded on
// the contact and noted in the open chat for its agent; unblocking too.
func TestTelegramButtonsAndBlockedBot(t *testing.T) {
	e := newTelegramEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	const chat = int64(777000222)
	e.must(200, e.update(ch, tgMessage(chat, 1, map[string]any{"text": "Where is my parcel?"})), "message")
	c := e.waitChat(alice, "waiting", "Ivan Petrov")
	e.must(200, e.Do("POST", "/api/v1/chats/"+c.ID.String()+"/accept", alice.Token, nil), "accept")

	press := tgButtonPress(chat, "cbq-1", "ship:yes")
	e.must(200, e.update(ch, press), "button")
	e.must(200, e.update(ch, press), "button delivered again")
	testenv.Eventually(t, 10*time.Second, "the button press is in the conversation and answered", func() bool {
		return len(e.messagesLike(alice, c.ID.String(), "[button] Yes, ship it")) == 1 && len(e.tg.snapshot().answered) >= 1
	})
	if got := e.tg.snapshot().answered; got[0] != "cbq-1" {
		t.Fatalf("answered callback queries %v, want cbq-1", got)
	}

	blocked := tgMembership(chat, "kicked")
	e.must(200, e.update(ch, blocked), "blocked")
	e.must(200, e.update(ch, blocked), "blocked delivered again")
	if got := e.chat(alice, c.ID.String()); got.ContactBlockedAt == nil {
		t.Fatal("the chat does not show that the customer blocked the bot")
	}
	notes := e.messagesLike(alice, c.ID.String(), "The customer blocked the bot")
	if len(notes) != 1 || notes[0].Direction != domain.System {
		t.Fatalf("system notes about the block: %+v", notes)
	}
	e.must(200, e.update(ch, tgMembership(chat, "member")), "unblocked")
	if got := e.chat(alice, c.ID.String()); got.ContactBlockedAt != nil {
		t.Fatal("the block is still shown after the customer allowed the bot again")
	}
	if n := len(e.messagesLike(alice, c.ID.String(), "allowed the bot again")); n != 1 {
		t.Fatalf("%d notes about the unblock, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE chat_id = ? AND direction = 'inbound'`, c.ID); n != 2 {
		t.Fatalf("%d customer messages, want the text and the button", n)
	}
}

// messagesLike lists the chat's messages whose text contains s.
func (e *env) messagesLike(a agent, chatID, s string) []api.MessageDTO {
	e.t.Helper()
	var page api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/messages?limit=100", a.Token, nil), "conversation").Decode(e.t, &page)
	var out []api.MessageDTO
	for _, m := range page.Items {
		if strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}
