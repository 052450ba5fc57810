package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/omnichat/omnichat/domain"
)

// CreateQueue inserts a queue.
func (s *Store) CreateQueue(ctx context.Context, q *Queue) error {
	q.ID = uuid.New()
	return conflictOn(s.db.WithContext(ctx).Create(q).Error, "queue with this name")
}

// GetQueue loads a queue.
func (s *Store) GetQueue(ctx context.Context, id uuid.UUID) (*Queue, error) {
	var q Queue
	return &q, notFound(s.db.WithContext(ctx).First(&q, "id = ?", id).Error, "queue")
}

// ListQueues lists queues by name.
func (s *Store) ListQueues(ctx context.Context) ([]Queue, error) {
	var qs []Queue
	return qs, s.db.WithContext(ctx).Order("name").Find(&qs).Error
}

// UpdateQueue writes the given columns of a queue.
func (s *Store) UpdateQueue(ctx context.Context, id uuid.UUID, cols map[string]any) (*Queue, error) {
	if _, err := s.GetQueue(ctx, id); err != nil {
		return nil, err
	}
	if len(cols) > 0 {
		cols["updated_at"] = time.Now().UTC()
		if err := s.db.WithContext(ctx).Model(&Queue{}).Where("id = ?", id).Updates(cols).Error; err != nil {
			return nil, conflictOn(err, "queue with this name")
		}
	}
	return s.GetQueue(ctx, id)
}

// DeleteQueue removes a queue no channel or chat refers to.
func (s *Store) DeleteQueue(ctx context.Context, id uuid.UUID) error {
	res := s.db.WithContext(ctx).Delete(&Queue{}, "id = ?", id)
	if res.Error != nil {
		return fmt.Errorf("queue still has channels or chats: %w", domain.ErrConflict)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("queue: %w", domain.ErrNotFound)
	}
	return nil
}

// QueueAgents are the users and roles that serve a queue.
type QueueAgents struct {
	Users []User
	Roles []Role
}

// ListQueueAgents lists the direct users and the roles of a queue.
func (s *Store) ListQueueAgents(ctx context.Context, queueID uuid.UUID) (*QueueAgents, error) {
	if _, err := s.GetQueue(ctx, queueID); err != nil {
		return nil, err
	}
	var qa QueueAgents
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT u.* FROM users u JOIN queue_users q ON q.user_id = u.id WHERE q.queue_id = ? ORDER BY u.name`, queueID).Scan(&qa.Users).Error; err != nil {
		return nil, err
	}
	if err := db.Raw(`SELECT r.* FROM roles r JOIN queue_roles q ON q.role_id = r.id WHERE q.queue_id = ? ORDER BY r.name`, queueID).Scan(&qa.Roles).Error; err != nil {
		return nil, err
	}
	return &qa, nil
}

// AddQueueUser makes a user an agent of a queue.
func (s *Store) AddQueueUser(ctx context.Context, queueID, userID uuid.UUID) error {
	if _, err := s.GetQueue(ctx, queueID); err != nil {
		return err
	}
	if _, err := s.GetUser(ctx, userID); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Exec(`INSERT INTO queue_users (queue_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, queueID, userID).Error
}

// AddQueueRole makes a role's members agents of a queue.
func (s *Store) AddQueueRole(ctx context.Context, queueID, roleID uuid.UUID) error {
	if _, err := s.GetQueue(ctx, queueID); err != nil {
		return err
	}
	if _, err := s.GetRole(ctx, roleID); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Exec(`INSERT INTO queue_roles (queue_id, role_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, queueID, roleID).Error
}

// RemoveQueueUser removes a direct agent from a queue.
func (s *Store) RemoveQueueUser(ctx context.Context, queueID, userID uuid.UUID) error {
	return s.deleteRows(ctx, &QueueUser{}, "queue agent", "queue_id = ? AND user_id = ?", queueID, userID)
}

// RemoveQueueRole removes a role from a queue.
func (s *Store) RemoveQueueRole(ctx context.Context, queueID, roleID uuid.UUID) error {
	return s.deleteRows(ctx, &QueueRole{}, "queue role", "queue_id = ? AND role_id = ?", queueID, roleID)
}

// agentQueuesSQL selects the queues a user serves, directly or through a role.
const agentQueuesSQL = `SELECT queue_id FROM queue_users WHERE user_id = @agent
	UNION SELECT qr.queue_id FROM queue_roles qr JOIN role_members m ON m.role_id = qr.role_id WHERE m.user_id = @agent`

// AgentQueueIDs lists the queues a user serves.
func (s *Store) AgentQueueIDs(ctx context.Context, userID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	return ids, s.db.WithContext(ctx).Raw(agentQueuesSQL, map[string]any{"agent": userID}).Scan(&ids).Error
}

// ServesQueue reports whether a user is an agent of a queue.
func (s *Store) ServesQueue(ctx context.Context, userID, queueID uuid.UUID) (bool, error) {
	var ok bool
	err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM (`+agentQueuesSQL+`) q WHERE q.queue_id = @queue)`,
		map[string]any{"agent": userID, "queue": queueID}).Scan(&ok).Error
	return ok, err
}
