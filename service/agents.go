package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Agents is the agent's side of users: their status and their queues.
type Agents struct {
	store *models.Store
}

// Queues lists the queues an agent serves, directly or through a role.
func (a *Agents) Queues(ctx context.Context, agentID uuid.UUID) ([]uuid.UUID, error) {
	qs, err := a.store.AgentQueueIDs(ctx, agentID)
	if qs == nil {
		qs = []uuid.UUID{}
	}
	return qs, err
}

// SetStatus sets an agent Active or Inactive. An Active agent may take
// waiting chats, so routing is woken with the change.
func (a *Agents) SetStatus(ctx context.Context, agentID uuid.UUID, status string) error {
	return wakeRoutingAfter(ctx, a.store, func(tx *models.Store) (bool, error) {
		return status == domain.AgentActive, tx.SetAgentStatus(ctx, agentID, status)
	})
}
