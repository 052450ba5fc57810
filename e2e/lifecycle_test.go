package e2e

import (
	"testing"
	"time"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
	"github.com/omnichat/omnichat/workflows"
)

// An admin sets everything up over HTTP; a customer writes; the chat is offered
// to the agent, accepted, answered (the reply reaches the outbound URL), closed
// by the completion timer; the customer's next message opens a new chat.
func TestChatLifecycleThroughHTTP(t *testing.T) {
	e := newEnv(t)
	e.must(200, e.Do("GET", "/readyz", "", nil), "readyz with Postgres and Temporal up")
	alice := e.agent("alice")
	q := e.queue("Support", domain.RuleAvailableAgent, 0.05, alice) // completion after 3 s
	ch := e.channel(q)
	e.activate(alice)

	e.must(200, e.inbound(ch, "conv-1", "m-1", "Hello, my order is late"), "inbound")
	offered := e.waitOffer(alice)
	if offered.ContactName != "Customer conv-1" || offered.ChannelID.String() != ch {
		t.Fatalf("offered chat has contact %q channel %s", offered.ContactName, offered.ChannelID)
	}

	var accepted api.ChatDTO
	e.must(200, e.Do("POST", "/api/v1/chats/"+offered.ID.String()+"/accept", alice.Token, nil), "accept").Decode(t, &accepted)
	if accepted.Status != domain.ChatInProgress || accepted.AgentID == nil || accepted.AgentID.String() != alice.ID {
		t.Fatalf("after accept: %+v", accepted)
	}

	var msgs api.MessagePage
	e.must(200, e.Do("GET", "/api/v1/chats/"+offered.ID.String()+"/messages", alice.Token, nil), "conversation").Decode(t, &msgs)
	if len(msgs.Items) != 1 || msgs.Items[0].Text != "Hello, my order is late" || msgs.Items[0].Direction != domain.Inbound {
		t.Fatalf("conversation: %+v", msgs.Items)
	}

	var sent api.MessageDTO
	e.must(201, e.Do("POST", "/api/v1/chats/"+offered.ID.String()+"/messages", alice.Token, map[string]any{"text": "It ships today"}), "send").Decode(t, &sent)
	testenv.Eventually(t, 10*time.Second, "the reply reaches the outbound URL", func() bool {
		for _, r := range e.out.got() {
			if r.Text == "It ships today" && r.ConversationID == "conv-1" && r.MessageID == sent.ID.String() {
				return true
			}
		}
		return false
	})
	testenv.Eventually(t, 5*time.Second, "the reply is marked sent with the provider's ID", func() bool {
		m, err := e.Store.GetMessage(t.Context(), sent.ID)
		return err == nil && m.Status == domain.MsgSent && m.ExternalID != nil && *m.ExternalID == "ext-"+sent.ID.String()
	})

	testenv.Eventually(t, 15*time.Second, "the completion timer closes the chat", func() bool {
		c := e.chat(alice, offered.ID.String())
		return c.Status == domain.ChatClosed && c.CloseReason != nil && *c.CloseReason == "timeout"
	})

	testenv.Eventually(t, 10*time.Second, "the chat's workflow completes", func() bool {
		d, err := e.Temporal.DescribeWorkflowExecution(t.Context(), "chat/"+ch+"/conv-1", "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	})
	e.recordHistory("chat-lifecycle", "chat/"+ch+"/conv-1")
	e.recordHistory("routing", workflows.RoutingWorkflowID(e.TaskQueue))

	e.must(200, e.inbound(ch, "conv-1", "m-2", "One more thing"), "inbound after close")
	next := e.waitOffer(alice)
	if next.ID == offered.ID {
		t.Fatal("the message after close must open a new chat")
	}
	if n := e.count(`SELECT count(*) FROM chats WHERE conversation_id = 'conv-1'`); n != 2 {
		t.Fatalf("want 2 chats for the conversation, got %d", n)
	}
}
