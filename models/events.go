package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// eventsChannel is the NOTIFY channel the event triggers wake listeners on.
const eventsChannel = "omnichat_events"

// EventPos is a place in the event log: events are ordered by the
// transaction that wrote them, then by their own number.
type EventPos struct {
	TxID uint64
	ID   int64
}

// String is the SSE id of the position: "<txid>.<id>".
func (p EventPos) String() string { return fmt.Sprintf("%d.%d", p.TxID, p.ID) }

// Less orders positions.
func (p EventPos) Less(q EventPos) bool {
	return p.TxID < q.TxID || p.TxID == q.TxID && p.ID < q.ID
}

// ParseEventPos reads "<txid>.<id>".
func ParseEventPos(s string) (EventPos, error) {
	tx, id, ok := strings.Cut(s, ".")
	t, err1 := strconv.ParseUint(tx, 10, 64)
	i, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil || i < 0 {
		return EventPos{}, fmt.Errorf("event id %q is not <txid>.<id>", s)
	}
	return EventPos{TxID: t, ID: i}, nil
}

// Event is one entry of the event log.
type Event struct {
	Pos       EventPos
	Type      string
	ChatID    *uuid.UUID
	Data      json.RawMessage
	CreatedAt time.Time
}

// EventViewer is whose events are read: admins see all, agents those naming
// them or a queue they serve.
type EventViewer struct {
	UserID uuid.UUID
	Admin  bool
}

// readableBelow is the SQL for the transaction ID below which every
// transaction of this database has ended: the oldest transaction still in
// progress in the current snapshot, leaving out those PostgreSQL reports as
// running in another database (they write no events here). A plain
// pg_snapshot_xmin would let any long transaction anywhere in the cluster —
// a dump, another application, a parallel test — hold every stream back.
// A transaction the query cannot place (ended meanwhile, or hidden from this
// role) counts as ours: the reader waits, it never skips.
const readableBelow = `(SELECT coalesce((
		SELECT min(xip::text::numeric) FROM pg_snapshot_xip(s.snap) AS xip
		WHERE xip::text::numeric % 4294967296 NOT IN (
			SELECT a.backend_xid::text::numeric FROM pg_stat_activity a
			WHERE a.backend_xid IS NOT NULL AND a.datname IS NOT NULL AND a.datname <> current_database())
	), pg_snapshot_xmax(s.snap)::text::numeric)::text::xid8
	FROM (SELECT pg_current_snapshot() AS snap) s)`

// eventRow is an event as scanned; txid comes as text (xid8).
type eventRow struct {
	ID        *int64
	TxID      *string
	Type      string
	ChatID    *uuid.UUID
	Data      []byte
	CreatedAt time.Time
	Xmin      string
}

// ReadEvents returns up to limit events after pos that v may see, and the
// position to read from next. Only transactions below readableBelow are
// read: every one of them has ended, and no transaction that starts later
// can write below it, so a reader that moves past them never skips an event
// committed late. When fewer than limit events come back, the next position
// moves to that bound (everything below it was looked at).
func (s *Store) ReadEvents(ctx context.Context, v EventViewer, pos EventPos, limit int) ([]Event, EventPos, error) {
	var rows []eventRow
	err := s.db.WithContext(ctx).Raw(`
		WITH s AS (SELECT `+readableBelow+` AS x)
		SELECT e.id, e.txid::text AS tx_id, e.type, e.chat_id, e.data, e.created_at, s.x::text AS xmin
		FROM s LEFT JOIN LATERAL (
			SELECT * FROM events e
			WHERE (e.txid, e.id) > (CAST(@tx AS xid8), @id) AND e.txid < s.x
			  AND (@admin OR @user = ANY (e.agent_ids)
			       OR e.queue_ids && ARRAY(SELECT queue_id FROM queue_users WHERE user_id = @user
			            UNION SELECT qr.queue_id FROM queue_roles qr JOIN role_members m ON m.role_id = qr.role_id WHERE m.user_id = @user))
			ORDER BY e.txid, e.id LIMIT @limit) e ON true`,
		map[string]any{"tx": strconv.FormatUint(pos.TxID, 10), "id": pos.ID, "admin": v.Admin, "user": v.UserID, "limit": limit}).
		Scan(&rows).Error
	if err != nil {
		return nil, pos, fmt.Errorf("read events: %w", err)
	}
	var out []Event
	next := pos
	for _, r := range rows {
		if r.ID == nil {
			continue
		}
		tx, _ := strconv.ParseUint(*r.TxID, 10, 64)
		e := Event{Pos: EventPos{TxID: tx, ID: *r.ID}, Type: r.Type, ChatID: r.ChatID, Data: r.Data, CreatedAt: r.CreatedAt}
		out = append(out, e)
		next = e.Pos
	}
	if len(out) < limit && len(rows) > 0 {
		if x, err := strconv.ParseUint(rows[0].Xmin, 10, 64); err == nil && next.Less(EventPos{TxID: x}) {
			next = EventPos{TxID: x}
		}
	}
	return out, next, nil
}

// EventTail is where a new reader starts: after every event already readable.
func (s *Store) EventTail(ctx context.Context) (EventPos, error) {
	var x string
	if err := s.db.WithContext(ctx).Raw(`SELECT (` + readableBelow + `)::text`).Scan(&x).Error; err != nil {
		return EventPos{}, fmt.Errorf("event tail: %w", err)
	}
	tx, err := strconv.ParseUint(x, 10, 64)
	return EventPos{TxID: tx}, err
}

// EventHorizon is the newest position pruned: events up to it are gone.
func (s *Store) EventHorizon(ctx context.Context) (EventPos, error) {
	var r struct {
		TxID string
		ID   int64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT txid::text AS tx_id, id FROM event_horizon`).Scan(&r).Error; err != nil {
		return EventPos{}, fmt.Errorf("event horizon: %w", err)
	}
	tx, _ := strconv.ParseUint(r.TxID, 10, 64)
	return EventPos{TxID: tx, ID: r.ID}, nil
}

// PruneEvents deletes the readable events written before cutoff and moves the
// horizon to the newest of them. It returns how many went.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var last struct {
			TxID *string
			ID   int64
		}
		if err := tx.Raw(`SELECT txid::text AS tx_id, id FROM events
			WHERE created_at < ? AND txid < `+readableBelow+`
			ORDER BY txid DESC, id DESC LIMIT 1`, cutoff).Scan(&last).Error; err != nil {
			return err
		}
		if last.TxID == nil {
			return nil
		}
		res := tx.Exec(`DELETE FROM events WHERE (txid, id) <= (?::xid8, ?)`, *last.TxID, last.ID)
		if res.Error != nil {
			return res.Error
		}
		n = res.RowsAffected
		return tx.Exec(`UPDATE event_horizon SET txid = ?::xid8, id = ? WHERE (txid, id) < (?::xid8, ?)`,
			*last.TxID, last.ID, *last.TxID, last.ID).Error
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// WakeEvents wakes the event readers of every process, in a transaction of
// its own that does not wait for the WAL flush: NOTIFY serialises commits
// server-wide, so the wake-up must not ride on a transaction that flushes.
func (s *Store) WakeEvents(ctx context.Context) error {
	return markUnavailable(s.db.WithContext(ctx).Exec(`SELECT set_config('synchronous_commit', 'off', true), pg_notify(?, '')`, eventsChannel).Error)
}

// ListenEvents holds a connection that listens for event wake-ups and calls
// wake for each, until ctx ends or the connection fails.
func (s *Store) ListenEvents(ctx context.Context, listening, wake func()) error {
	return s.listen(ctx, eventsChannel, listening, wake)
}
