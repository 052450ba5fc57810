package routing

import (
	"testing"
	"time"
)

func at(min int) *time.Time {
	t := time.Date(2026, 1, 1, 10, min, 0, 0, time.UTC)
	return &t
}

func queues(ids ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestAssignPrefersFewestChats(t *testing.T) {
	agents := []Agent{
		{ID: "a", Load: 1, Queues: queues("q")},
		{ID: "b", Load: 0, LastAcceptedAt: at(59), Queues: queues("q")},
	}
	got := Assign([]Waiting{{ChatID: "c1", QueueID: "q"}}, agents, 2)
	if len(got) != 1 || got[0].AgentID != "b" {
		t.Fatalf("want chat to agent b with fewer chats, got %+v", got)
	}
}

func TestAssignTieGoesToOldestLastAccepted(t *testing.T) {
	agents := []Agent{
		{ID: "recent", Load: 1, LastAcceptedAt: at(30), Queues: queues("q")},
		{ID: "old", Load: 1, LastAcceptedAt: at(5), Queues: queues("q")},
	}
	got := Assign([]Waiting{{ChatID: "c1", QueueID: "q"}}, agents, 2)
	if len(got) != 1 || got[0].AgentID != "old" {
		t.Fatalf("want agent whose last accept is oldest, got %+v", got)
	}
}

func TestAssignNeverAcceptedCountsAsOldest(t *testing.T) {
	agents := []Agent{
		{ID: "a", LastAcceptedAt: at(1), Queues: queues("q")},
		{ID: "z", Queues: queues("q")},
	}
	got := Assign([]Waiting{{ChatID: "c1", QueueID: "q"}}, agents, 2)
	if len(got) != 1 || got[0].AgentID != "z" {
		t.Fatalf("want never-accepted agent z, got %+v", got)
	}
}

func TestAssignRespectsLimitAndFIFO(t *testing.T) {
	agents := []Agent{
		{ID: "a", Load: 1, Queues: queues("q")},
		{ID: "b", Load: 2, Queues: queues("q")},
	}
	waiting := []Waiting{{"oldest", "q"}, {"middle", "q"}, {"newest", "q"}}
	got := Assign(waiting, agents, 2)
	if len(got) != 1 {
		t.Fatalf("only one free slot, got %d assignments: %+v", len(got), got)
	}
	if got[0].ChatID != "oldest" || got[0].AgentID != "a" {
		t.Fatalf("want oldest chat to agent a, got %+v", got[0])
	}
}

func TestAssignSkipsQueueWithoutAgents(t *testing.T) {
	agents := []Agent{{ID: "a", Queues: queues("q2")}}
	waiting := []Waiting{{"c-q1", "q1"}, {"c-q2", "q2"}}
	got := Assign(waiting, agents, 2)
	if len(got) != 1 || got[0].ChatID != "c-q2" {
		t.Fatalf("want the q2 chat served although an older q1 chat waits, got %+v", got)
	}
}

func TestAssignSpreadsLoad(t *testing.T) {
	agents := []Agent{{ID: "a", Queues: queues("q")}, {ID: "b", Queues: queues("q")}, {ID: "c", Queues: queues("q")}}
	var waiting []Waiting
	for i := 0; i < 10; i++ {
		waiting = append(waiting, Waiting{ChatID: string(rune('0' + i)), QueueID: "q"})
	}
	got := Assign(waiting, agents, 2)
	if len(got) != 6 {
		t.Fatalf("3 agents x 2 = 6 assignments, got %d", len(got))
	}
	per := map[string]int{}
	for i, a := range got {
		per[a.AgentID]++
		if a.ChatID != waiting[i].ChatID {
			t.Fatalf("assignment %d went to chat %s, want FIFO order %s", i, a.ChatID, waiting[i].ChatID)
		}
	}
	for id, n := range per {
		if n != 2 {
			t.Fatalf("agent %s got %d chats, want 2", id, n)
		}
	}
}
