package facebook

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

var cfg = channels.Config{ID: "ch", Settings: map[string]string{SettingPageID: "100200300400", SettingAppID: "555000111"}}

func TestParseFixtures(t *testing.T) {
	p, _ := New(DefaultGraphURL, nil)
	msgs, err := p.ParseWebhook(cfg, fixture(t, "message.json"))
	if err != nil || len(msgs) != 1 || msgs[0].Text != "hello, world!" || msgs[0].ConversationID != "1254938275682919" {
		t.Fatalf("message: %+v %v", msgs, err)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "attachments.json"))
	if len(msgs) != 1 || msgs[0].Kind != domain.KindPhoto || len(msgs[0].Attachments) != 2 || msgs[0].Attachments[1].Kind != domain.KindDocument {
		t.Fatalf("attachments: %+v", msgs)
	}
	msgs, _ = p.ParseWebhook(cfg, fixture(t, "mixed.json"))
	var events []string
	for _, m := range msgs {
		e := m.Event
		if m.Standby {
			e = "standby:" + m.Text
		}
		events = append(events, e)
	}
	want := []string{domain.EventDelivered, domain.EventRead, domain.EventEcho, domain.EventHandoverToUs, "standby:while the bot owns it"}
	if len(events) != len(want) {
		t.Fatalf("events: %v, want %v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events: %v, want %v", events, want)
		}
	}
	if msgs[2].ConversationID != "1254938275682919" || msgs[2].ExternalID != "m_out_1" {
		t.Fatalf("echo belongs to the customer's conversation: %+v", msgs[2])
	}
}

// FuzzParseWebhook: no input panics the parser; events are bounded by the body's size.
func FuzzParseWebhook(f *testing.F) {
	for _, name := range []string{"message.json", "attachments.json", "mixed.json"} {
		f.Add(fixture(f, name))
	}
	p, _ := New(DefaultGraphURL, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := p.ParseWebhook(cfg, body)
		if err != nil {
			return
		}
		// Every event needs at least a sender object in the body.
		if len(msgs) > len(body)/10+1 {
			t.Fatalf("%d events from %d bytes", len(msgs), len(body))
		}
	})
}
