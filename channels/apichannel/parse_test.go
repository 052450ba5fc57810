package apichannel

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/omnichat/omnichat/channels"
)

func TestParseFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/message.json")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := New(nil).ParseWebhook(channels.Config{}, b)
	if err != nil || len(msgs) != 1 || msgs[0].Text != "Hello!" || msgs[0].SenderName != "Bob" {
		t.Fatalf("%+v %v", msgs, err)
	}
	for _, bad := range []string{`{}`, `{"conversation_id":"c","message_id":"m","sender":{"id":"s"},"text":"t","x":1}`, `{"conversation_id":"c"} {}`,
		`{"conversation_id":"` + strings.Repeat("c", 300) + `","message_id":"m","sender":{"id":"s"},"text":"t"}`} {
		if _, err := New(nil).ParseWebhook(channels.Config{}, []byte(bad)); !errors.Is(err, channels.ErrBadPayload) {
			t.Fatalf("%.40s: want ErrBadPayload, got %v", bad, err)
		}
	}
}

// FuzzParseWebhook: no input panics the parser; accepted fields stay within their limits.
func FuzzParseWebhook(f *testing.F) {
	b, err := os.ReadFile("testdata/message.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := New(nil).ParseWebhook(channels.Config{}, body)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if len(m.Text) > maxTextLen || len(m.ConversationID) > maxIDLen || m.ExternalID == "" {
				t.Fatalf("accepted out-of-limit message: %+v", m)
			}
		}
	})
}
