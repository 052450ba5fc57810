package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/omnichat/omnichat/domain"
)

// routingLockKey serialises every change of agent capacity (offers, accepts,
// expiries, transfers), so routing never over-assigns an agent.
const routingLockKey = 0x6f6d6e69 // "omni"

// routingChannel is the NOTIFY channel that wakes the dispatcher.
const routingChannel = "omnichat_routing"

// withRoutingLock runs fn in a transaction holding the routing lock.
func (s *Store) withRoutingLock(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := lockRouting(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// lockRouting takes the routing lock until tx ends.
func lockRouting(tx *gorm.DB) error {
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, routingLockKey).Error; err != nil {
		return fmt.Errorf("routing lock: %w", err)
	}
	return nil
}

// WakeRouting tells the dispatcher that routing may have work: a chat
// waits, or an agent may have capacity. Inside a transaction the wake-up is
// sent at commit, and not at all if it rolls back.
func (s *Store) WakeRouting(ctx context.Context) error {
	return s.db.WithContext(ctx).Exec(`SELECT pg_notify(?, '')`, routingChannel).Error
}

// ListenRouting holds a connection of its own that listens for wake-ups and
// calls wake for each, until ctx ends or the connection fails. Wake-ups sent
// while nobody listens are lost: a listener makes a full pass when it starts.
func (s *Store) ListenRouting(ctx context.Context, listening, wake func()) error {
	return s.listen(ctx, routingChannel, listening, wake)
}

// listen holds a connection of its own subscribed to channel and calls wake
// for each notification, until ctx ends or the connection fails.
func (s *Store) listen(ctx context.Context, channel string, listening, wake func()) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return markUnavailable(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		if _, err := c.Exec(ctx, "LISTEN "+channel); err != nil {
			return err
		}
		listening()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				// The connection is subscribed, or broken: never hand it back to the pool.
				return errors.Join(err, driver.ErrBadConn)
			}
			wake()
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return markUnavailable(err)
}

func agentLoad(tx *gorm.DB, agentID uuid.UUID) (int, error) {
	var n int64
	err := tx.Model(&Chat{}).Where("agent_id = ? AND status IN ?", agentID, []string{domain.ChatOffered, domain.ChatInProgress}).Count(&n).Error
	return int(n), err
}

// canTakeChat checks, under the routing lock, that an agent is Active and
// below SimultaneousChats.
func canTakeChat(tx *gorm.DB, agentID uuid.UUID) error {
	var u User
	if err := tx.First(&u, "id = ?", agentID).Error; err != nil {
		return notFound(err, "agent")
	}
	if u.Status != domain.AgentActive {
		return fmt.Errorf("agent is not active: %w", domain.ErrConflict)
	}
	rs, err := (&Store{db: tx}).GetRoutingSettings(tx.Statement.Context)
	if err != nil {
		return err
	}
	load, err := agentLoad(tx, agentID)
	if err != nil {
		return err
	}
	if load >= rs.SimultaneousChats {
		return fmt.Errorf("agent already has %d chats (SimultaneousChats %d): %w", load, rs.SimultaneousChats, domain.ErrConflict)
	}
	return nil
}

// RoutingSnapshot is what the dispatcher decides on.
type RoutingSnapshot struct {
	Limit   int
	Accept  time.Duration
	Waiting []WaitingChat
	Agents  []AgentLoad
}

// WaitingChat is a chat of an available_agent queue waiting for an offer.
type WaitingChat struct {
	ID         uuid.UUID
	QueueID    uuid.UUID
	WorkflowID string
}

// AgentLoad is an Active agent with their load and queues.
type AgentLoad struct {
	ID             uuid.UUID
	Load           int
	LastAcceptedAt *time.Time
	QueueIDs       []uuid.UUID
}

// Offer is one chat offered to one agent.
type Offer struct {
	ChatID     uuid.UUID
	AgentID    uuid.UUID
	WorkflowID string
	OfferedAt  time.Time
}

// freeAgentsSQL selects, for every agent who is Active and below the limit,
// their load (users.open_chats, kept by a trigger on chats) and each queue
// they serve (directly or through a role).
const freeAgentsSQL = `
	WITH members AS (
		SELECT queue_id, user_id FROM queue_users
		UNION SELECT qr.queue_id, m.user_id FROM queue_roles qr JOIN role_members m ON m.role_id = qr.role_id
	), free AS (
		SELECT u.id, u.open_chats AS load, u.last_accepted_at, m.queue_id
		FROM users u JOIN members m ON m.user_id = u.id
		WHERE u.status = 'active' AND u.open_chats < @limit
	)`

// AssignWaiting, under the routing lock, loads the waiting chats that can be
// offered now and the agents who can take them, lets decide pick offers, and
// records them. It reads waiting chats queue by queue, oldest first, and from
// each queue at most as many as its free agents can take (and at most
// perQueue), so a queue whose agents are all away never hides another
// queue's chats. more reports that a queue had more chats than one pass read.
func (s *Store) AssignWaiting(ctx context.Context, perQueue int, decide func(RoutingSnapshot) []Offer) (offers []Offer, snap RoutingSnapshot, more bool, err error) {
	err = s.withRoutingLock(ctx, func(tx *gorm.DB) error {
		rs, err := (&Store{db: tx}).GetRoutingSettings(ctx)
		if err != nil {
			return err
		}
		snap = RoutingSnapshot{Limit: rs.SimultaneousChats, Accept: rs.AcceptTimeout}
		args := map[string]any{"limit": snap.Limit, "per_queue": perQueue, "rule": domain.RuleAvailableAgent}
		var waiting []struct {
			WaitingChat
			Capped bool
		}
		if err := tx.Raw(freeAgentsSQL+`, capacity AS (
				SELECT queue_id, sum(@limit - load) AS free FROM free GROUP BY queue_id
			)
			SELECT w.id, w.queue_id, w.workflow_id, (w.rn = @per_queue AND cap.free > @per_queue) AS capped
			FROM capacity cap JOIN queues q ON q.id = cap.queue_id AND q.routing_rule = @rule
			CROSS JOIN LATERAL (
				SELECT c.id, c.queue_id, c.workflow_id, c.waiting_since, c.seq, row_number() OVER (ORDER BY c.waiting_since, c.seq) AS rn
				FROM chats c WHERE c.queue_id = cap.queue_id AND c.status = 'waiting'
				ORDER BY c.waiting_since, c.seq LIMIT LEAST(cap.free, @per_queue)
			) w
			ORDER BY w.waiting_since, w.seq`, args).Scan(&waiting).Error; err != nil {
			return fmt.Errorf("waiting chats: %w", err)
		}
		if len(waiting) == 0 {
			return nil
		}
		for _, w := range waiting {
			snap.Waiting = append(snap.Waiting, w.WaitingChat)
			more = more || w.Capped
		}
		var rows []struct {
			ID             uuid.UUID
			Load           int
			LastAcceptedAt *time.Time
			QueueID        uuid.UUID
		}
		if err := tx.Raw(freeAgentsSQL+` SELECT id, load, last_accepted_at, queue_id FROM free ORDER BY id, queue_id`, args).Scan(&rows).Error; err != nil {
			return fmt.Errorf("agents: %w", err)
		}
		for _, r := range rows {
			if n := len(snap.Agents); n > 0 && snap.Agents[n-1].ID == r.ID {
				snap.Agents[n-1].QueueIDs = append(snap.Agents[n-1].QueueIDs, r.QueueID)
				continue
			}
			snap.Agents = append(snap.Agents, AgentLoad{ID: r.ID, Load: r.Load, LastAcceptedAt: r.LastAcceptedAt, QueueIDs: []uuid.UUID{r.QueueID}})
		}
		now := time.Now().UTC()
		for _, o := range decide(snap) {
			res := tx.Model(&Chat{}).Where("id = ? AND status = ?", o.ChatID, domain.ChatWaiting).
				Updates(map[string]any{"status": domain.ChatOffered, "agent_id": o.AgentID, "offered_at": now, "offer_notified": false})
			if res.Error != nil {
				return fmt.Errorf("record offer: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				o.OfferedAt = now
				offers = append(offers, o)
			}
		}
		return nil
	})
	// A capped queue matters only when the pass could use what it read.
	return offers, snap, more && len(offers) > 0, err
}

// MarkOffersNotified records that the chats' workflows know of their offers.
func (s *Store) MarkOffersNotified(ctx context.Context, chatIDs []uuid.UUID) error {
	if len(chatIDs) == 0 {
		return nil
	}
	return s.db.WithContext(ctx).Model(&Chat{}).Where("id IN ? AND status = ?", chatIDs, domain.ChatOffered).
		Update("offer_notified", true).Error
}

// UnnotifiedOffers lists offers recorded before the given time whose chat
// workflow was never told (the dispatcher stopped, or Temporal was away).
func (s *Store) UnnotifiedOffers(ctx context.Context, before time.Time, limit int) ([]Offer, error) {
	var offers []Offer
	err := s.db.WithContext(ctx).Raw(`SELECT id AS chat_id, agent_id, workflow_id, offered_at FROM chats
		WHERE status = ? AND NOT offer_notified AND offered_at < ? ORDER BY offered_at LIMIT ?`,
		domain.ChatOffered, before.UTC(), limit).Scan(&offers).Error
	return offers, err
}
