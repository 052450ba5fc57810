package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

type readsFlags struct {
	api, token         string
	chats, perChat     int
	agentChats, agents int
	requests           int
	rps                float64
	keep               bool
}

// runBenchReads measures the panel's reads at scale: it seeds chats and
// messages straight into PostgreSQL (one bench channel and queue, named after
// the run), gives one agent a fixed number of them, and times GET /chats for
// every status filter and both unread counts through HTTP as that agent.
func runBenchReads(ctx context.Context, args []string) error {
	var f readsFlags
	fs := flag.NewFlagSet("bench reads", flag.ContinueOnError)
	fs.StringVar(&f.api, "api", "http://127.0.0.1:8080", "base URL of the running omnichat API")
	fs.StringVar(&f.token, "token", os.Getenv("OMNICHAT_BENCH_TOKEN"), "admin token (default $OMNICHAT_BENCH_TOKEN)")
	fs.IntVar(&f.chats, "chats", 100_000, "chats to seed")
	fs.IntVar(&f.perChat, "messages-per-chat", 10, "messages per seeded chat (half inbound)")
	fs.IntVar(&f.agentChats, "agent-chats", 50, "chats of the measured agent, spread over the whole range")
	fs.IntVar(&f.agents, "agents", 20, "other agents holding the rest of the chats")
	fs.IntVar(&f.requests, "requests", 500, "requests per endpoint")
	fs.Float64Var(&f.rps, "rps", 40, "request rate, under the per-token limit (OMNICHAT_RATE_LIMIT)")
	fs.BoolVar(&f.keep, "keep", true, "leave the seeded rows behind (false: delete them at the end)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `omnichat bench reads: seed a bench channel and queue with many chats and
messages directly in PostgreSQL (OMNICHAT_DATABASE_URL: point it at a database
of its own), then time the agent panel's reads through the API as one agent.
The seeded chats belong to a channel and queue named "bench reads <run>".

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.token == "" {
		return fmt.Errorf("bench reads needs an admin token: -token or OMNICHAT_BENCH_TOKEN")
	}
	if f.agentChats > f.chats || f.chats < 1 || f.perChat < 1 || f.agents < 1 || f.rps <= 0 {
		return fmt.Errorf("bench reads: -chats, -messages-per-chat, -agents and -rps must be positive and -agent-chats at most -chats")
	}
	_, db, err := benchDatabase()
	if err != nil {
		return err
	}
	b := &bench{f: benchFlags{api: f.api, token: f.token}, http: &http.Client{Timeout: 30 * time.Second}}
	runID := uuid.NewString()[:8]

	// The queue routes to available agents: the measured agent sees exactly
	// its own chats, the figure the issue asks for.
	var q, ch, agent struct{ ID string }
	if err := b.call(ctx, "POST", "/api/v1/admin/queues", map[string]any{"name": "bench reads " + runID, "routing_rule": "available_agent"}, &q); err != nil {
		return err
	}
	if err := b.call(ctx, "POST", "/api/v1/admin/channels", map[string]any{"provider": "api", "name": "bench reads " + runID, "queue_id": q.ID,
		"secret": "bench-reads-" + uuid.NewString(), "settings": map[string]string{"outbound_url": "http://127.0.0.1:9/"}}, &ch); err != nil {
		return err
	}
	name := "bench-reads-" + runID
	if err := b.call(ctx, "POST", "/api/v1/admin/users", map[string]any{"name": name, "email": name + "@bench.invalid"}, &agent); err != nil {
		return err
	}
	if err := b.call(ctx, "POST", "/api/v1/admin/queues/"+q.ID+"/agents", map[string]any{"user_id": agent.ID}, nil); err != nil {
		return err
	}
	if err := b.call(ctx, "PATCH", "/api/v1/admin/users/"+agent.ID, map[string]any{"status": "active"}, nil); err != nil {
		return err
	}
	var tok struct{ Token string }
	if err := b.call(ctx, "POST", "/api/v1/admin/users/"+agent.ID+"/tokens", map[string]any{"name": "bench reads"}, &tok); err != nil {
		return err
	}

	fmt.Printf("seed: %d chats x %d messages in channel %s (queue %s); agent %s holds %d chats\n", f.chats, f.perChat, ch.ID, q.ID, agent.ID, f.agentChats)
	began := time.Now()
	if err := seedReads(ctx, db, f, runID, ch.ID, q.ID, agent.ID); err != nil {
		return err
	}
	// Vacuumed as well as analyzed: a table just filled with a million rows is
	// otherwise vacuumed by autovacuum while the reads are timed (measured: the
	// lists' p50 went from 6 ms to 25-29 ms), and a live deployment's tables
	// are vacuumed as they go.
	if err := db.WithContext(ctx).Exec(`VACUUM (ANALYZE) users, contacts, chats, messages, events`).Error; err != nil {
		return err
	}
	fmt.Printf("  seeded, vacuumed and analyzed in %s\n", time.Since(began).Round(100*time.Millisecond))
	if !f.keep {
		defer func() {
			if err := unseedReads(context.Background(), db, ch.ID, q.ID, runID); err != nil {
				fmt.Fprintln(os.Stderr, "cleanup:", err)
			}
		}()
	}

	ab := &bench{f: benchFlags{api: f.api, token: tok.Token}, http: b.http}
	paths := []string{"/api/v1/chats", "/api/v1/chats?status=bot", "/api/v1/chats?status=waiting", "/api/v1/chats?status=offered",
		"/api/v1/chats?status=in_progress", "/api/v1/chats?status=closed", "/api/v1/chats/unread-count", "/api/v1/messages/unread-count"}
	fmt.Printf("reads: %d requests per endpoint at %.0f/s, one at a time, as the agent\n", f.requests, f.rps)
	for _, p := range paths {
		lat, failed, err := timeReads(ctx, ab, p, f.requests, f.rps)
		if err != nil {
			return err
		}
		fmt.Printf("  GET %-36s p50 %-8s p99 %-8s max %-8s (%d failed)\n", p, pct(lat, 50), pct(lat, 99), pct(lat, 100), failed)
	}
	return nil
}

// timeReads warms the endpoint up, then times n requests paced at rps.
func timeReads(ctx context.Context, b *bench, path string, n int, rps float64) ([]time.Duration, int, error) {
	for i := 0; i < 20; i++ {
		if err := b.call(ctx, "GET", path, nil, nil); err != nil {
			return nil, 0, err
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	defer tick.Stop()
	var lat []time.Duration
	failed := 0
	for i := 0; i < n; i++ {
		select {
		case <-ctx.Done():
			return lat, failed, ctx.Err()
		case <-tick.C:
		}
		start := time.Now()
		if err := b.call(ctx, "GET", path, nil, nil); err != nil {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, failed, nil
}

// seedReads writes the bench rows with set-based INSERTs. Triggers are off
// for the session (session_replication_role, a superuser setting) so the
// event log and the agents' open_chats are filled in one statement each
// afterwards, as the triggers would have written them, rather than a trigger
// call per row.
//
// Chats: the measured agent's are spread evenly over the seq range (half
// closed, 2 in 5 in progress, 1 in 10 offered); of the others, 90% are closed,
// 7% in progress, 2% waiting, 1% bot-owned; the newest are the last minutes.
func seedReads(ctx context.Context, db *gorm.DB, f readsFlags, runID, channelID, queueID, agentID string) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
			return fmt.Errorf("seed needs a superuser connection (session_replication_role): %w", err)
		}
		args := map[string]any{"run": runID, "channel": channelID, "queue": queueID, "agent": agentID, "n": f.chats,
			"agents": f.agents, "every": f.chats / f.agentChats, "mine": f.agentChats, "per": f.perChat}
		steps := []struct{ what, sql string }{
			{"agents", `INSERT INTO users (id, name, email, status)
				SELECT gen_random_uuid(), 'bench-reads-' || @run || '-' || g, 'bench-reads-' || @run || '-' || g || '@bench.invalid', 'active'
				FROM generate_series(1, @agents) g`},
			{"contacts", `INSERT INTO contacts (id, channel_id, external_id, name)
				SELECT gen_random_uuid(), @channel, 'reads-' || g, 'Reader ' || g FROM generate_series(1, @n) g`},
			{"chats", `WITH others AS (SELECT array_agg(id ORDER BY email) AS ids FROM users WHERE email LIKE 'bench-reads-' || @run || '-%'),
				g AS (SELECT g, (g % @every = 0 AND g / @every <= @mine) AS mine, g % 100 AS r, (g / @every) % 10 AS r10,
					now() - ((@n - g) * interval '1 minute') AS t FROM generate_series(1, @n) g)
				INSERT INTO chats (id, channel_id, queue_id, contact_id, conversation_id, workflow_id, status, agent_id,
					waiting_since, offered_at, accepted_at, closed_at, close_reason, agent_read_at, last_message_at, created_at, offer_notified)
				SELECT gen_random_uuid(), @channel, @queue, ct.id, 'reads-' || g.g, 'bench-reads/' || @run || '/' || g.g, s.status,
					CASE WHEN s.status IN ('waiting', 'bot') THEN NULL WHEN g.mine THEN CAST(@agent AS uuid) ELSE others.ids[1 + g.g % @agents ] END,
					g.t, CASE WHEN s.status NOT IN ('waiting', 'bot') THEN g.t + interval '5 seconds' END,
					CASE WHEN s.status IN ('in_progress', 'closed') THEN g.t + interval '10 seconds' END,
					CASE WHEN s.status = 'closed' THEN g.t + interval '30 minutes' END,
					CASE WHEN s.status = 'closed' THEN 'agent' END,
					-- Half of the open chats have unread messages: read up to the middle of the conversation.
					CASE WHEN s.status = 'closed' OR g.g % 2 = 0 THEN g.t + interval '1 hour' ELSE g.t + (@per / 2) * interval '1 second' END,
					g.t + @per * interval '1 second', g.t, true
				FROM g CROSS JOIN others
				JOIN contacts ct ON ct.channel_id = @channel AND ct.external_id = 'reads-' || g.g
				CROSS JOIN LATERAL (SELECT CASE
					WHEN g.mine THEN CASE WHEN g.r10 < 5 THEN 'closed' WHEN g.r10 < 9 THEN 'in_progress' ELSE 'offered' END
					WHEN g.r < 90 THEN 'closed' WHEN g.r < 97 THEN 'in_progress' WHEN g.r < 99 THEN 'waiting' ELSE 'bot' END AS status) s
				ORDER BY g.g`},
			// What the trigger on chats would have counted.
			{"loads", `UPDATE users u SET open_chats = u.open_chats + l.n
				FROM (SELECT agent_id, count(*) AS n FROM chats WHERE channel_id = @channel AND agent_id IS NOT NULL
					AND status IN ('offered', 'in_progress') GROUP BY agent_id) l WHERE l.agent_id = u.id`},
			{"messages", `INSERT INTO messages (id, chat_id, channel_id, direction, external_id, text, sender_name, agent_id, status, created_at)
				SELECT gen_random_uuid(), c.id, c.channel_id, CASE WHEN i % 2 = 1 THEN 'inbound' ELSE 'outbound' END,
					CASE WHEN i % 2 = 1 THEN c.conversation_id || '-' || i END,
					'bench message ' || i || ' of ' || c.conversation_id, CASE WHEN i % 2 = 1 THEN 'Reader' ELSE '' END,
					CASE WHEN i % 2 = 0 THEN c.agent_id END, CASE WHEN i % 2 = 1 THEN 'received' ELSE 'sent' END,
					c.created_at + i * interval '1 second'
				FROM chats c CROSS JOIN generate_series(1, @per) i WHERE c.channel_id = @channel ORDER BY c.seq, i`},
			{"events", `INSERT INTO events (type, chat_id, agent_ids, queue_ids, data, created_at)
				SELECT 'message.created', m.chat_id, array_remove(ARRAY[c.agent_id], NULL), omnichat_chat_queues(c.status, c.queue_id),
					jsonb_build_object('chat_id', m.chat_id, 'message_id', m.id, 'direction', m.direction, 'status', m.status), m.created_at
				FROM messages m JOIN chats c ON c.id = m.chat_id WHERE m.channel_id = @channel ORDER BY m.seq`},
		}
		for _, s := range steps {
			start := time.Now()
			res := tx.Exec(s.sql, args)
			if res.Error != nil {
				return fmt.Errorf("seed %s: %w", s.what, res.Error)
			}
			fmt.Printf("  %-8s %8d rows in %s\n", s.what, res.RowsAffected, time.Since(start).Round(100*time.Millisecond))
		}
		return nil
	}, nil)
}

// unseedReads deletes what seedReads wrote (the channel and queue stay, empty).
func unseedReads(ctx context.Context, db *gorm.DB, channelID, queueID, runID string) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, q := range []string{
			`DELETE FROM events WHERE chat_id IN (SELECT id FROM chats WHERE channel_id = @channel)`,
			`DELETE FROM messages WHERE channel_id = @channel`,
			`DELETE FROM chats WHERE channel_id = @channel`,
			`DELETE FROM contacts WHERE channel_id = @channel`,
			`DELETE FROM users WHERE email LIKE 'bench-reads-' || @run || '-%' AND NOT EXISTS (SELECT 1 FROM api_tokens t WHERE t.user_id = users.id)`,
		} {
			if err := tx.Exec(q, map[string]any{"channel": channelID, "queue": queueID, "run": runID}).Error; err != nil {
				return err
			}
		}
		return nil
	}, nil)
}
