package telegram

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	p, _ := New(DefaultBaseURL, nil)
	cfg := channels.Config{ID: "ch"}
	msgs, err := p.ParseWebhook(cfg, fixture(t, "text.json"))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("text: %v %v", msgs, err)
	}
	if m := msgs[0]; m.ConversationID != "1111111" || m.ExternalID != "1111111:1365" || m.Text != "/start" || m.SenderName != "Test Lastname" || m.Kind != domain.KindText {
		t.Fatalf("text message: %+v", m)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "photo.json"))
	if m := msgs[0]; m.Kind != domain.KindPhoto || m.Text != "look" || len(m.Attachments) != 1 || m.Attachments[0].RemoteID != "AgAD-large" {
		t.Fatalf("photo must take the largest size: %+v", m)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "edited.json"))
	if m := msgs[0]; !m.Edited || m.ExternalID != "1111111:1365" || m.Text != "/start again" {
		t.Fatalf("edit: %+v", m)
	}
	msgs, err = p.ParseWebhook(cfg, fixture(t, "callback.json"))
	if err != nil || len(msgs) != 0 {
		t.Fatalf("a button of an inline-mode message, outside any conversation, yields nothing: %v %v", msgs, err)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "callback_button.json"))
	if len(msgs) != 1 {
		t.Fatalf("button: %+v", msgs)
	}
	if m := msgs[0]; m.ConversationID != "1111111" || m.ExternalID != "callback:4382bfdwdsb323b2d9" || m.Text != "[button] Yes, ship it" ||
		m.SenderID != "1111111" || m.ReplyToken != "4382bfdwdsb323b2d9" || m.Event != "" {
		t.Fatalf("button press must be the customer's message with the button's label: %+v", m)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "blocked.json"))
	if len(msgs) != 1 || msgs[0].Event != domain.EventBlocked || msgs[0].ConversationID != "1111111" || msgs[0].SenderID != "1111111" {
		t.Fatalf("the customer blocking the bot: %+v", msgs)
	}
	if _, err := p.ParseWebhook(cfg, []byte(`{"update_id": "x"`)); err == nil {
		t.Fatal("malformed JSON must be refused")
	}
}

// FuzzParseWebhook: no input panics the parser, and what comes out is bounded by what went in.
func FuzzParseWebhook(f *testing.F) {
	for _, name := range []string{"text.json", "photo.json", "edited.json", "callback.json", "callback_button.json", "blocked.json"} {
		f.Add(fixture(f, name))
	}
	p, _ := New(DefaultBaseURL, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := p.ParseWebhook(channels.Config{ID: "ch"}, body)
		if err != nil {
			return
		}
		if len(msgs) > 1 {
			t.Fatalf("one update yielded %d messages", len(msgs))
		}
		for _, m := range msgs {
			if len(m.Text) > len(body)+100 {
				t.Fatalf("text of %d bytes from a body of %d", len(m.Text), len(body))
			}
		}
	})
}
