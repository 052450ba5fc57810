package models_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// referenceList is the agent list as one plain condition (visible to the
// agent, or bot-owned in their queues or for an admin), the definition the
// index-friendly query in ListAgentChats must agree with.
const referenceList = `SELECT c.seq FROM chats c JOIN queues q ON q.id = c.queue_id
	WHERE (c.agent_id = @agent
	    OR (@take AND c.status = 'waiting' AND q.routing_rule = 'all_agents' AND c.queue_id IN (SELECT queue_id FROM queue_users WHERE user_id = @agent))
	    OR (c.status = 'bot' AND (@admin OR c.queue_id IN (SELECT queue_id FROM queue_users WHERE user_id = @agent))))
	  AND (@status = '' OR c.status = @status) AND (@before = 0 OR c.seq < @before)
	ORDER BY c.seq DESC LIMIT @limit`

const referenceUnread = `SELECT count(*) FILTER (WHERE n > 0) AS chats, COALESCE(sum(n), 0) AS messages FROM (
	SELECT (SELECT count(*) FROM messages m WHERE m.chat_id = c.id AND m.direction = 'inbound'
	    AND m.created_at > COALESCE(c.agent_read_at, '-infinity'::timestamptz)) AS n
	FROM chats c JOIN queues q ON q.id = c.queue_id
	WHERE (c.agent_id = @agent OR (@take AND c.status = 'waiting' AND q.routing_rule = 'all_agents'
	    AND c.queue_id IN (SELECT queue_id FROM queue_users WHERE user_id = @agent))) AND c.status <> 'closed') v`

// TestAgentListMatchesItsDefinition checks, with the read indexes migrated,
// that the chat list and the unread counts return exactly the rows of their
// plain definitions, for every status filter, page size, cursor and viewer.
func TestAgentListMatchesItsDefinition(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	s, ctx := f.s, f.ctx
	// Above every viewer's load: whether they may take chats follows their status alone.
	if _, err := s.SetSetting(ctx, models.SettingSimultaneousChats, "100"); err != nil {
		t.Fatal(err)
	}
	exec := func(query string, args ...any) {
		t.Helper()
		var ids []uuid.UUID
		f.must(s.Raw(ctx, &ids, query+" RETURNING id", args...))
		if len(ids) != 1 {
			t.Fatalf("%s: %d rows", query, len(ids))
		}
	}
	var indexes []string
	if err := s.Raw(ctx, &indexes, `SELECT indexname FROM pg_indexes WHERE indexname IN
		('chats_agent_seq', 'chats_agent_status_seq', 'chats_listed_queue', 'chats_bot', 'messages_chat_inbound') ORDER BY indexname`); err != nil {
		t.Fatal(err)
	}
	if len(indexes) != 5 {
		t.Fatalf("read indexes after migration = %v, want all five", indexes)
	}

	other := &models.Queue{Name: "routed", RoutingRule: domain.RuleAvailableAgent}
	f.must(s.CreateQueue(ctx, other))
	otherCh := &models.Channel{Provider: "api", Name: "C2", Active: true, QueueID: other.ID, Secret: "s"}
	f.must(s.CreateChannel(ctx, otherCh))

	me := f.agent("me", nil, false)
	colleague := f.agent("colleague", nil, false)
	outsider := &models.User{Name: "outsider", Email: "outsider@example.com", Status: domain.AgentActive}
	f.must(s.CreateUser(ctx, outsider))

	// Chats in every status, held by me, by a colleague or by nobody, in my
	// all_agents queue and in a queue I do not serve.
	statuses := []string{domain.ChatWaiting, domain.ChatOffered, domain.ChatInProgress, domain.ChatClosed, domain.ChatBot}
	var chats []uuid.UUID
	for i := 0; i < 60; i++ {
		ch := f.ch
		if i%4 == 3 {
			ch = otherCh
		}
		conv := fmt.Sprintf("conv-%d", i)
		id := uuid.New()
		chats = append(chats, id)
		_, err := s.Ingest(ctx, models.IngestInput{ChatID: id, OpenChat: true, WorkflowID: "wf-" + conv, ChannelID: ch.ID,
			Message: domain.InboundMessage{ConversationID: conv, SenderID: "cust-" + conv, SenderName: "Cust", ExternalID: "m-" + conv, Text: "hi"}})
		f.must(err)
		status := statuses[i%len(statuses)]
		var agent *uuid.UUID
		switch {
		case status == domain.ChatWaiting || status == domain.ChatBot:
		case i%3 == 0:
			agent = &me
		default:
			agent = &colleague
		}
		exec(`UPDATE chats SET status = ?, agent_id = ? WHERE id = ?`, status, agent, id)
		if i%2 == 0 { // half have been read
			exec(`UPDATE chats SET agent_read_at = now() WHERE id = ?`, id)
		}
	}

	for _, viewer := range []struct {
		name  string
		id    uuid.UUID
		admin bool
	}{{"me", me, false}, {"me as admin", me, true}, {"colleague", colleague, false}, {"outsider", outsider.ID, false}, {"outsider as admin", outsider.ID, true}} {
		for _, take := range []bool{true, false} {
			status := domain.AgentActive
			if !take {
				status = domain.AgentInactive
			}
			exec(`UPDATE users SET status = ? WHERE id = ?`, status, viewer.id)
			for _, st := range append([]string{""}, statuses...) {
				for _, limit := range []int{100, 3} {
					var before int64
					for page := 0; page < 30; page++ {
						got, err := s.ListAgentChats(ctx, viewer.id, models.ChatFilter{Admin: viewer.admin, Status: st, Before: before, Limit: limit})
						f.must(err)
						var want []int64
						f.must(s.Raw(ctx, &want, referenceList, map[string]any{"agent": viewer.id, "take": take, "admin": viewer.admin,
							"status": st, "before": before, "limit": limit}))
						seqs := make([]int64, len(got))
						for i, r := range got {
							seqs[i] = r.Seq
						}
						if !slices.Equal(seqs, want) {
							t.Fatalf("%s (take %v) status %q limit %d before %d: list %v, definition %v", viewer.name, take, st, limit, before, seqs, want)
						}
						if len(got) < limit {
							break
						}
						before = got[len(got)-1].Seq
					}
				}
			}
			unreadChats, msgs, err := s.UnreadCounts(ctx, viewer.id)
			f.must(err)
			var want struct{ Chats, Messages int }
			f.must(s.Raw(ctx, &want, referenceUnread, map[string]any{"agent": viewer.id, "take": take}))
			if unreadChats != want.Chats || msgs != want.Messages {
				t.Fatalf("%s (take %v): unread %d chats %d messages, definition %d and %d", viewer.name, take, unreadChats, msgs, want.Chats, want.Messages)
			}
		}
		// The access check alone (messages, mark read) lets in exactly the
		// chats AgentChat loads.
		seen := 0
		for _, id := range chats {
			_, rowErr := s.AgentChat(ctx, viewer.id, id, viewer.admin)
			sees := s.AgentSeesChat(ctx, viewer.id, id, viewer.admin)
			for _, err := range []error{rowErr, sees} {
				if err != nil && !errors.Is(err, domain.ErrNotFound) {
					t.Fatal(err)
				}
			}
			if (rowErr == nil) != (sees == nil) {
				t.Fatalf("%s, chat %s: AgentChat error %v, AgentSeesChat error %v", viewer.name, id, rowErr, sees)
			}
			// The messages read checks the same access, with a page and with nothing after the cursor.
			for _, after := range []int64{0, 1 << 62} {
				ms, err := s.AgentChatMessages(ctx, viewer.id, id, viewer.admin, after, 10)
				if err != nil && !errors.Is(err, domain.ErrNotFound) {
					t.Fatal(err)
				}
				if (err == nil) != (sees == nil) {
					t.Fatalf("%s, chat %s after %d: AgentChatMessages error %v, AgentSeesChat error %v", viewer.name, id, after, err, sees)
				}
				if want := map[bool]int{true: 1, false: 0}[after == 0 && err == nil]; len(ms) != want {
					t.Fatalf("%s, chat %s after %d: %d messages, want %d", viewer.name, id, after, len(ms), want)
				}
			}
			if sees == nil {
				seen++
			}
		}
		if viewer.name == "me" && (seen == 0 || seen == len(chats)) {
			t.Fatalf("me sees %d of %d chats: the fixture must hold chats both seen and not", seen, len(chats))
		}
	}
}

func TestAgentChatMessagesCarryTheirOwnAttachments(t *testing.T) {
	f := newFixture(t, domain.RuleAllAgents)
	s, ctx := f.s, f.ctx
	me := f.agent("me", nil, false)
	chatID := uuid.New()
	// Every attachment of a message is stored at the same instant: the
	// provider's order must come back all the same (six: a random order
	// passes by chance once in 720).
	var six []domain.AttachmentRef
	for i := range 6 {
		six = append(six, domain.AttachmentRef{Kind: "image", RemoteID: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("a%d.png", i), MediaType: "image/png", Size: int64(10 + i)})
	}
	files := [][]domain.AttachmentRef{
		six,
		nil,
		{{Kind: "audio", RemoteID: "p9", Name: "three.ogg", MediaType: "audio/ogg", Size: 30}},
	}
	for i, atts := range files {
		_, err := s.Ingest(ctx, models.IngestInput{ChatID: chatID, OpenChat: i == 0, WorkflowID: "wf-files", ChannelID: f.ch.ID,
			Message: domain.InboundMessage{ConversationID: "files", SenderID: "cust", SenderName: "Cust", ExternalID: fmt.Sprintf("m-%d", i),
				Text: fmt.Sprintf("message %d", i), Attachments: atts}})
		f.must(err)
	}
	ms, err := s.AgentChatMessages(ctx, me, chatID, false, 0, 10)
	f.must(err)
	if len(ms) != len(files) {
		t.Fatalf("%d messages, want %d", len(ms), len(files))
	}
	for i, m := range ms {
		if m.Text != fmt.Sprintf("message %d", i) {
			t.Fatalf("message %d: text %q", i, m.Text)
		}
		var names []string
		for _, a := range m.Attachments {
			if a.MessageID == nil || *a.MessageID != m.ID || a.ChannelID != f.ch.ID || a.Status != domain.AttachmentPending || a.CreatedAt.IsZero() {
				t.Fatalf("message %d: attachment %+v", i, a)
			}
			names = append(names, fmt.Sprintf("%s %s %s %d", a.Kind, a.Name, a.MediaType, a.Size))
		}
		var want []string
		for _, a := range files[i] {
			want = append(want, fmt.Sprintf("%s %s %s %d", a.Kind, a.Name, a.MediaType, a.Size))
		}
		if !slices.Equal(names, want) {
			t.Fatalf("message %d: attachments %v, want %v", i, names, want)
		}
		if m.Attachments == nil {
			t.Fatalf("message %d: nil attachments (the API must list [])", i)
		}
	}
	// The API's own store (a chat taking its messages from Postgres) keeps
	// the order too.
	direct := f.directChat("files-direct")
	res, err := s.StoreInOpenChat(ctx, f.ch.ID, domain.InboundMessage{ConversationID: "files-direct", SenderID: "cust-files-direct",
		ExternalID: "m-six", Text: "six files", Attachments: six})
	f.must(err)
	if !res.Stored {
		t.Fatalf("direct store: %+v", res)
	}
	dms, err := s.AgentChatMessages(ctx, me, direct, false, 0, 10)
	f.must(err)
	if len(dms) != 2 || len(dms[1].Attachments) != len(six) {
		t.Fatalf("direct chat: %d messages, want 2 with the last holding %d files", len(dms), len(six))
	}
	for i, a := range dms[1].Attachments {
		if a.Name != six[i].Name {
			t.Fatalf("direct store: attachment %d is %s, want %s", i, a.Name, six[i].Name)
		}
	}

	// The cursor and the limit page through the same rows.
	page, err := s.AgentChatMessages(ctx, me, chatID, false, ms[0].Seq, 1)
	f.must(err)
	if len(page) != 1 || page[0].ID != ms[1].ID || len(page[0].Attachments) != 0 {
		t.Fatalf("page after the first message: %+v", page)
	}
}
