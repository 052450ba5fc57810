// Package routing holds the pure decisions of chat routing: which waiting chat
// goes to which agent. It does no I/O; the dispatcher feeds it a snapshot.
package routing

import (
	"sort"
	"time"
)

// Waiting is a chat that waits for an agent, listed oldest first.
type Waiting struct {
	ChatID  string
	QueueID string
}

// Agent is an Active agent with their current load.
type Agent struct {
	ID string
	// Load counts chats in progress plus pending offers.
	Load int
	// LastAcceptedAt is nil when the agent never accepted a chat.
	LastAcceptedAt *time.Time
	Queues         map[string]bool
}

// Assignment offers one chat to one agent.
type Assignment struct {
	ChatID  string
	AgentID string
}

// Better reports whether agent a goes before agent b: fewest chats first, then
// the one whose last accepted chat is oldest (never accepted counts as oldest),
// then by ID so the decision is deterministic.
func Better(a, b *Agent) bool {
	if a.Load != b.Load {
		return a.Load < b.Load
	}
	switch {
	case a.LastAcceptedAt == nil && b.LastAcceptedAt != nil:
		return true
	case a.LastAcceptedAt != nil && b.LastAcceptedAt == nil:
		return false
	case a.LastAcceptedAt != nil && !a.LastAcceptedAt.Equal(*b.LastAcceptedAt):
		return a.LastAcceptedAt.Before(*b.LastAcceptedAt)
	}
	return a.ID < b.ID
}

// Assign serves waiting chats first-come, first-served: each chat, oldest first,
// goes to the best agent of its queue who is below limit. A chat whose queue has
// no free agent keeps waiting and does not block younger chats of other queues.
// It never gives an agent more than limit chats.
func Assign(waiting []Waiting, agents []Agent, limit int) []Assignment {
	pool := make([]*Agent, len(agents))
	for i := range agents {
		a := agents[i]
		pool[i] = &a
	}
	sort.Slice(pool, func(i, j int) bool { return Better(pool[i], pool[j]) })
	var out []Assignment
	for _, w := range waiting {
		var best *Agent
		for _, a := range pool {
			if a.Load >= limit || !a.Queues[w.QueueID] {
				continue
			}
			if best == nil || Better(a, best) {
				best = a
			}
		}
		if best == nil {
			continue
		}
		best.Load++
		out = append(out, Assignment{ChatID: w.ChatID, AgentID: best.ID})
	}
	return out
}
