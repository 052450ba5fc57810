package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/models"
)

// Queues manages queues and the users and roles that serve them.
type Queues struct {
	store *models.Store
}

// NewQueue describes a queue to create; no completion timeout means its chats
// never close by themselves.
type NewQueue struct {
	Name                     string
	RoutingRule              string
	CompletionTimeoutMinutes *float64
}

// Create adds a queue.
func (q *Queues) Create(ctx context.Context, in NewQueue) (*Queue, error) {
	queue := &models.Queue{Name: in.Name, RoutingRule: in.RoutingRule, CompletionTimeoutMinutes: in.CompletionTimeoutMinutes}
	return queue, q.store.CreateQueue(ctx, queue)
}

// Get loads a queue.
func (q *Queues) Get(ctx context.Context, id uuid.UUID) (*Queue, error) {
	return q.store.GetQueue(ctx, id)
}

// List lists queues by name.
func (q *Queues) List(ctx context.Context) ([]Queue, error) { return q.store.ListQueues(ctx) }

// QueuePatch changes the fields that are set; ClearCompletionTimeout removes the timeout.
type QueuePatch struct {
	Name                     *string
	RoutingRule              *string
	CompletionTimeoutMinutes *float64
	ClearCompletionTimeout   bool
}

// Update changes a queue.
func (q *Queues) Update(ctx context.Context, id uuid.UUID, p QueuePatch) (*Queue, error) {
	cols := map[string]any{}
	setIf(cols, "name", p.Name)
	setIf(cols, "routing_rule", p.RoutingRule)
	setIf(cols, "completion_timeout_minutes", p.CompletionTimeoutMinutes)
	if p.ClearCompletionTimeout {
		cols["completion_timeout_minutes"] = nil
	}
	return q.store.UpdateQueue(ctx, id, cols)
}

// Delete removes a queue no channel or chat refers to.
func (q *Queues) Delete(ctx context.Context, id uuid.UUID) error { return q.store.DeleteQueue(ctx, id) }

// Agents lists the users and roles of a queue.
func (q *Queues) Agents(ctx context.Context, id uuid.UUID) (*QueueAgents, error) {
	return q.store.ListQueueAgents(ctx, id)
}

// AddUser makes a user an agent of the queue; they may take its waiting
// chats, so routing is woken.
func (q *Queues) AddUser(ctx context.Context, queueID, userID uuid.UUID) error {
	return wakeRoutingAfter(ctx, q.store, func(tx *models.Store) (bool, error) {
		return true, tx.AddQueueUser(ctx, queueID, userID)
	})
}

// AddRole makes a role's members agents of the queue; routing is woken.
func (q *Queues) AddRole(ctx context.Context, queueID, roleID uuid.UUID) error {
	return wakeRoutingAfter(ctx, q.store, func(tx *models.Store) (bool, error) {
		return true, tx.AddQueueRole(ctx, queueID, roleID)
	})
}

// RemoveUser removes a direct agent from the queue.
func (q *Queues) RemoveUser(ctx context.Context, queueID, userID uuid.UUID) error {
	return q.store.RemoveQueueUser(ctx, queueID, userID)
}

// RemoveRole removes a role from the queue.
func (q *Queues) RemoveRole(ctx context.Context, queueID, roleID uuid.UUID) error {
	return q.store.RemoveQueueRole(ctx, queueID, roleID)
}
