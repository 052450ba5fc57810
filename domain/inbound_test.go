package domain_test

import (
	"testing"

	"github.com/omnichat/omnichat/domain"
)

func TestCleanTextMakesTextStorable(t *testing.T) {
	for in, want := range map[string]string{
		"hello":         "hello",
		"Grüße 👋":       "Grüße 👋",
		"bad \x00 byte": "bad \uFFFD byte",
		"cut \xe2\x82":  "cut \uFFFD",
		"\x00\xff":      "\uFFFD\uFFFD",
		"":              "",
	} {
		if got := domain.CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
	m := domain.InboundMessage{ExternalID: "m\x00", Text: "t\x00", SenderName: "n\xff",
		Attachments: []domain.AttachmentRef{{Name: "f\x00.txt"}}}
	m.Clean()
	if m.ExternalID != "m\uFFFD" || m.Text != "t\uFFFD" || m.SenderName != "n\uFFFD" || m.Attachments[0].Name != "f\uFFFD.txt" {
		t.Fatalf("Clean left %+v", m)
	}
}
