package e2e

import (
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
)

// An API-channel endpoint that answers the same message_id for every reply:
// the second reply is recorded sent (without the ID another message holds)
// instead of being retried for ever, and the customer's message after the
// close is stored and opens the next chat instead of waiting behind it.
func TestEndpointAnsweringOneIDForEveryReply(t *testing.T) {
	e := newEnv(t)
	e.out.sameID = "ok"
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAvailableAgent, 0, alice))
	e.activate(alice)

	e.must(200, e.inbound(ch, "conv", "m-1", "hello"), "inbound")
	chat := e.waitOffer(alice)
	e.must(200, e.Do("POST", "/api/v1/chats/"+chat.ID.String()+"/accept", alice.Token, nil), "accept")
	var sent [2]api.MessageDTO
	for i, text := range []string{"first", "second"} {
		e.must(201, e.Do("POST", "/api/v1/chats/"+chat.ID.String()+"/messages", alice.Token, map[string]any{"text": text}), "send").Decode(t, &sent[i])
	}
	testenv.Eventually(t, 20*time.Second, "both replies recorded sent", func() bool {
		for _, s := range sent {
			m, err := e.Store.GetMessage(t.Context(), s.ID)
			if err != nil || m.Status != domain.MsgSent {
				return false
			}
		}
		return true
	})
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = 'ok'`); n != 1 {
		t.Fatalf("%d messages hold the endpoint's ID, want the first reply only", n)
	}
	if n := len(e.out.got()); n != 2 {
		t.Fatalf("the endpoint got %d replies, want 2 (none sent twice)", n)
	}

	e.must(200, e.Do("POST", "/api/v1/chats/"+chat.ID.String()+"/close", alice.Token, nil), "close")
	e.must(200, e.inbound(ch, "conv", "m-2", "one more thing"), "inbound after close")
	next := e.waitOffer(alice)
	if next.ID == chat.ID {
		t.Fatal("the message after the close must open a new chat")
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE external_id = 'm-2'`); n != 1 {
		t.Fatalf("message after the close stored %d times", n)
	}
}
