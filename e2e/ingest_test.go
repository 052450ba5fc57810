package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
	"github.com/omnichat/omnichat/workflows"
)

// signalsOf counts the signals of a name in every run of a workflow ID.
func signalsOf(t *testing.T, workflowID, name string) int {
	t.Helper()
	n := 0
	it := temporalClient.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.SignalName == name {
			n++
		}
	}
	return n
}

func (e *env) messageTexts(a agent, chatID string) []string {
	e.t.Helper()
	var page api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+chatID+"/messages?limit=100", a.Token, nil), "messages").Decode(e.t, &page)
	var out []string
	for _, m := range page.Items {
		out = append(out, m.Text)
	}
	return out
}

// A message for an open chat is in the conversation the moment the webhook
// is answered, without a signal to the chat's workflow; a customer's answer
// after the agent's reply disarms the completion timer through a notice;
// once the agent closed the chat, the next message opens a new one.
func TestMessageVisibleOnAcknowledgement(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAllAgents, 0.05, alice) // completion after 3 s
	ch := e.channel(q)
	e.activate(alice)
	conv := "ack-1"
	chatID := acceptedChat(e, alice, ch, conv)
	testenv.Eventually(t, 10*time.Second, "the chat takes its messages from Postgres once it received the signalled ones", func() bool {
		return e.count(`SELECT count(*) FROM chats WHERE id = ? AND direct_ingest`, chatID) == 1
	})
	for i := 2; i <= 11; i++ {
		text := fmt.Sprintf("message %d", i)
		e.must(200, e.inbound(ch, conv, fmt.Sprintf("%s-%d", conv, i), text), "inbound")
		texts := e.messageTexts(alice, chatID)
		if len(texts) != i || texts[len(texts)-1] != text {
			t.Fatalf("after the acknowledgement of %q the conversation is %q", text, texts)
		}
	}
	wf := workflows.ChatWorkflowID(ch, conv)
	if n := signalsOf(t, wf, workflows.SignalInbound); n != 1 {
		t.Fatalf("the open chat's workflow got %d inbound signals, want 1 (the first message)", n)
	}

	// The agent replies (arming the completion timer); the customer answers.
	e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": "anything else?"}), "send")
	testenv.Eventually(t, 10*time.Second, "the reply arms the completion timer", func() bool {
		s, err := e.App.Chats.State(context.Background(), wf)
		return err == nil && !s.CompletionDeadline.IsZero()
	})
	e.must(200, e.inbound(ch, conv, conv+"-answer", "yes, one more thing"), "answer")
	testenv.Eventually(t, 10*time.Second, "the answer's notice disarms the timer", func() bool {
		s, err := e.App.Chats.State(context.Background(), wf)
		return err == nil && s.CompletionDeadline.IsZero() && s.Status == domain.ChatInProgress
	})
	if c := e.chat(alice, chatID); c.Status != domain.ChatInProgress {
		t.Fatalf("the customer answered: the chat stays open, is %s", c.Status)
	}

	e.must(200, e.Do("POST", "/api/v1/chats/"+chatID+"/close", alice.Token, nil), "close")
	e.must(200, e.inbound(ch, conv, conv+"-next", "hello again"), "next")
	next := e.waitChat(alice, "waiting", "Customer "+conv)
	if next.ID.String() == chatID {
		t.Fatal("a message after the close must open a new chat")
	}
	testenv.Eventually(t, 10*time.Second, "the next chat holds the message", func() bool {
		texts := e.messageTexts(alice, next.ID.String())
		return len(texts) == 1 && texts[0] == "hello again"
	})
	if n := e.count(`SELECT count(*) FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.id = ? AND m.external_id = ?`, chatID, conv+"-next"); n != 0 {
		t.Fatal("a message was stored in the closed chat")
	}
}

// Two first messages of a conversation at once open one chat holding both.
func TestTwoFirstMessagesOpenOneChat(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAllAgents, 0, alice))
	const convs = 5
	var wg sync.WaitGroup
	for c := range convs {
		for m := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conv := fmt.Sprintf("pair-%d", c)
				if r := e.inbound(ch, conv, fmt.Sprintf("%s-%d", conv, m), "first"); r.Status != 200 {
					t.Errorf("inbound: %d %s", r.Status, r.Body)
				}
			}()
		}
	}
	wg.Wait()
	testenv.Eventually(t, 20*time.Second, "every message stored", func() bool {
		return e.count(`SELECT count(*) FROM messages WHERE channel_id = ? AND direction = 'inbound'`, ch) == 2*convs
	})
	if n := e.count(`SELECT count(*) FROM chats WHERE channel_id = ?`, ch); n != convs {
		t.Fatalf("%d chats for %d conversations", n, convs)
	}
	if n := e.count(`SELECT count(DISTINCT chat_id) FROM messages WHERE channel_id = ?`, ch); n != convs {
		t.Fatalf("messages spread over %d chats, want %d", n, convs)
	}
}

// The completion timer fires while the customer answers: the chat either
// stays open with the answer, or closes and the answer opens the next chat.
func TestCompletionTimeoutRacesCustomerAnswer(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	ch := e.channel(e.queue("Support", domain.RuleAllAgents, 0.02, alice)) // 1.2 s
	e.activate(alice)
	e.setting("SimultaneousChats", "50")
	noticed := false
	for i, offset := range []time.Duration{-100 * time.Millisecond, -20 * time.Millisecond, 0, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		conv := fmt.Sprintf("race-%d", i)
		chatID := acceptedChat(e, alice, ch, conv)
		e.must(201, e.Do("POST", "/api/v1/chats/"+chatID+"/messages", alice.Token, map[string]any{"text": "bye?"}), "send")
		wf := workflows.ChatWorkflowID(ch, conv)
		var deadline time.Time
		testenv.Eventually(t, 10*time.Second, "timer armed", func() bool {
			s, err := e.App.Chats.State(context.Background(), wf)
			deadline = s.CompletionDeadline
			return err == nil && !deadline.IsZero()
		})
		time.Sleep(time.Until(deadline.Add(offset)))
		e.must(200, e.inbound(ch, conv, conv+"-late", "wait!"), "late answer")
		var holder string
		testenv.Eventually(t, 15*time.Second, "the answer is stored", func() bool {
			var ids []string
			if err := e.Store.Raw(context.Background(), &ids, `SELECT chat_id::text FROM messages WHERE external_id = ?`, conv+"-late"); err != nil {
				t.Fatal(err)
			}
			if len(ids) == 1 {
				holder = ids[0]
			}
			return len(ids) == 1
		})
		first := e.chat(alice, chatID)
		switch {
		case holder == chatID && first.Status == domain.ChatInProgress:
			e.must(200, e.Do("POST", "/api/v1/chats/"+chatID+"/close", alice.Token, nil), "close")
			if !noticed {
				// A history with the "answered" notice, for the replay tests.
				testenv.Eventually(t, 10*time.Second, "chat closed", func() bool {
					s, err := e.App.Chats.State(context.Background(), wf)
					return err == nil && s.Status == domain.ChatClosed
				})
				e.recordHistory("chat-answered-notice", wf)
				noticed = true
			}
		case holder != chatID && first.Status == domain.ChatClosed:
		default:
			t.Fatalf("offset %s: answer in chat %s, first chat %s is %s", offset, holder, chatID, first.Status)
		}
	}
}
