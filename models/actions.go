package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/omnichat/omnichat/domain"
)

// Action is a chat action: a workflow of any worker, a no-code definition, or a built-in.
type Action struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	Caption      string
	QueueID      *uuid.UUID `gorm:"type:uuid"`
	Enabled      bool
	Kind         string
	WorkflowType string
	TaskQueue    string
	Definition   json.RawMessage `gorm:"type:jsonb"`
	Builtin      string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ActionRun is one run of an action on a chat, with what the action was when it ran.
type ActionRun struct {
	ID             uuid.UUID  `gorm:"type:uuid;primaryKey"`
	ActionID       *uuid.UUID `gorm:"type:uuid"`
	Caption        string
	Kind           string
	WorkflowType   string
	TaskQueue      string
	Definition     json.RawMessage `gorm:"type:jsonb"`
	ChatID         uuid.UUID       `gorm:"type:uuid"`
	AgentID        uuid.UUID       `gorm:"type:uuid"`
	IdempotencyKey string
	Status         string
	Result         *string
	Error          *string
	CreatedAt      time.Time
	FinishedAt     *time.Time
}

// Case is a case made from a chat.
type Case struct {
	ID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	Number      string
	SourceKey   string
	RunID       *uuid.UUID `gorm:"type:uuid"`
	Subject     string
	Description string
	Status      string
	ContactID   uuid.UUID `gorm:"type:uuid"`
	ChatID      uuid.UUID `gorm:"type:uuid"`
	QueueID     uuid.UUID `gorm:"type:uuid"`
	CreatedAt   time.Time
}

// CreateAction stores a new action.
func (s *Store) CreateAction(ctx context.Context, a *Action) error {
	a.ID = uuid.New()
	now := time.Now().UTC()
	a.CreatedAt, a.UpdatedAt = now, now
	return conflictOn(s.db.WithContext(ctx).Create(a).Error, "an action with this caption in this queue")
}

// GetAction loads an action.
func (s *Store) GetAction(ctx context.Context, id uuid.UUID) (*Action, error) {
	var a Action
	return &a, notFound(s.db.WithContext(ctx).First(&a, "id = ?", id).Error, "action")
}

// ListActions lists every action, by caption.
func (s *Store) ListActions(ctx context.Context) ([]Action, error) {
	var as []Action
	return as, s.db.WithContext(ctx).Order("lower(caption), id").Find(&as).Error
}

// QueueActions lists the enabled actions of a queue and the queue-less ones.
func (s *Store) QueueActions(ctx context.Context, queueID uuid.UUID) ([]Action, error) {
	var as []Action
	return as, s.db.WithContext(ctx).Where("enabled AND (queue_id IS NULL OR queue_id = ?)", queueID).
		Order("lower(caption), id").Find(&as).Error
}

// UpdateAction writes changed columns; clearQueue makes the action queue-less.
func (s *Store) UpdateAction(ctx context.Context, id uuid.UUID, cols map[string]any) (*Action, error) {
	cols["updated_at"] = time.Now().UTC()
	res := s.db.WithContext(ctx).Model(&Action{}).Where("id = ?", id).Updates(cols)
	if res.Error != nil {
		return nil, conflictOn(res.Error, "an action with this caption in this queue")
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("action: %w", domain.ErrNotFound)
	}
	return s.GetAction(ctx, id)
}

// DeleteAction deletes an action; its past runs keep their records.
func (s *Store) DeleteAction(ctx context.Context, id uuid.UUID) error {
	return s.deleteRows(ctx, &Action{}, "action", "id = ?", id)
}

// CreateRun records a run once per (chat, agent, idempotency key); created
// is false when the key matched an earlier run, which is returned instead.
func (s *Store) CreateRun(ctx context.Context, r *ActionRun) (run *ActionRun, created bool, err error) {
	db := s.db.WithContext(ctx)
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(r)
	if res.Error != nil {
		return nil, false, res.Error
	}
	var stored ActionRun
	if err := db.Where("chat_id = ? AND agent_id = ? AND idempotency_key = ?", r.ChatID, r.AgentID, r.IdempotencyKey).Take(&stored).Error; err != nil {
		return nil, false, fmt.Errorf("load run: %w", err)
	}
	return &stored, stored.ID == r.ID, nil
}

// GetRun loads a run.
func (s *Store) GetRun(ctx context.Context, id uuid.UUID) (*ActionRun, error) {
	var r ActionRun
	return &r, notFound(s.db.WithContext(ctx).First(&r, "id = ?", id).Error, "action run")
}

// ChatRuns lists a chat's runs, oldest first.
func (s *Store) ChatRuns(ctx context.Context, chatID uuid.UUID) ([]ActionRun, error) {
	var rs []ActionRun
	return rs, s.db.WithContext(ctx).Where("chat_id = ?", chatID).Order("created_at, id").Find(&rs).Error
}

// FinishRun records a run's outcome and notes it in its chat, once: a run
// already finished is left as it is (finished reports whether this call did it).
func (s *Store) FinishRun(ctx context.Context, id uuid.UUID, status, result, errMsg, note string) (finished bool, err error) {
	err = s.tx(ctx, func(tx *gorm.DB) error {
		cols := map[string]any{"status": status, "finished_at": time.Now().UTC()}
		if result != "" {
			cols["result"] = result
		}
		if errMsg != "" {
			cols["error"] = errMsg
		}
		res := tx.Model(&ActionRun{}).Where("id = ? AND finished_at IS NULL", id).Updates(cols)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		finished = true
		var chat Chat
		if err := tx.Raw(`SELECT c.* FROM chats c JOIN action_runs r ON r.chat_id = c.id WHERE r.id = ?`, id).Scan(&chat).Error; err != nil {
			return err
		}
		return addSystemMessage(tx, chat.ID, chat.ChannelID, note)
	})
	return finished, err
}

// AddNote adds a system note to a chat once per key (a retried step adds one).
func (s *Store) AddNote(ctx context.Context, chatID uuid.UUID, key, text string) error {
	db := s.db.WithContext(ctx)
	var chat Chat
	if err := db.First(&chat, "id = ?", chatID).Error; err != nil {
		return notFound(err, "chat")
	}
	m := &Message{ID: uuid.New(), ChatID: chat.ID, ChannelID: chat.ChannelID, Direction: domain.System, Kind: domain.KindText,
		Text: text, SenderName: "omnichat", Status: domain.MsgReceived, IdempotencyKey: &key, CreatedAt: time.Now().UTC()}
	return db.Clauses(clause.OnConflict{DoNothing: true}).Create(m).Error
}

// CaseInput is what a case is made from.
type CaseInput struct {
	SourceKey string
	RunID     *uuid.UUID
	ChatID    uuid.UUID
	Subject   string
}

// CreateCase makes a case from a chat once per source key: a retry finds
// the case the first attempt made. The subject defaults to the chat's first
// inbound message; the description is the transcript so far.
func (s *Store) CreateCase(ctx context.Context, in CaseInput) (*Case, error) {
	var out Case
	err := s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Where("source_key = ?", in.SourceKey).Take(&out).Error
		if err == nil || !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		var chat Chat
		if err := tx.First(&chat, "id = ?", in.ChatID).Error; err != nil {
			return notFound(err, "chat")
		}
		var msgs []Message
		if err := tx.Where("chat_id = ?", chat.ID).Order("seq").Limit(500).Find(&msgs).Error; err != nil {
			return err
		}
		subject, transcript := in.Subject, ""
		for _, m := range msgs {
			if m.Direction == domain.Inbound && subject == "" && m.Text != "" {
				subject = m.Text
			}
			transcript += fmt.Sprintf("[%s] %s (%s): %s\n", m.CreatedAt.UTC().Format(time.RFC3339), m.SenderName, m.Direction, m.Text)
		}
		if subject == "" {
			subject = "Chat " + chat.ID.String()
		}
		if r := []rune(subject); len(r) > 200 {
			subject = string(r[:200])
		}
		var n int64
		if err := tx.Raw(`SELECT nextval('case_numbers')`).Scan(&n).Error; err != nil {
			return err
		}
		out = Case{ID: uuid.New(), Number: fmt.Sprintf("CS-%06d", n), SourceKey: in.SourceKey, RunID: in.RunID, Subject: subject,
			Description: transcript, Status: "new", ContactID: chat.ContactID, ChatID: chat.ID, QueueID: chat.QueueID, CreatedAt: time.Now().UTC()}
		return tx.Create(&out).Error
	})
	return &out, err
}

// CaseFilter narrows a list of cases.
type CaseFilter struct {
	ContactID *uuid.UUID
	ChatID    *uuid.UUID
	Limit     int
}

// casesVisible selects the cases a user sees: of a queue they serve, or all for admins.
const casesVisible = `(@admin OR queue_id IN (` + agentQueuesSQL + `))`

// ListCases lists the cases a user sees, newest first.
func (s *Store) ListCases(ctx context.Context, userID uuid.UUID, admin bool, f CaseFilter) ([]Case, error) {
	q := s.db.WithContext(ctx).Where(casesVisible, map[string]any{"agent": userID, "admin": admin})
	if f.ContactID != nil {
		q = q.Where("contact_id = ?", *f.ContactID)
	}
	if f.ChatID != nil {
		q = q.Where("chat_id = ?", *f.ChatID)
	}
	var cs []Case
	return cs, q.Order("created_at DESC, number DESC").Limit(f.Limit).Find(&cs).Error
}

// VisibleCase loads a case the user sees; any other is ErrNotFound.
func (s *Store) VisibleCase(ctx context.Context, userID uuid.UUID, admin bool, id uuid.UUID) (*Case, error) {
	var c Case
	err := s.db.WithContext(ctx).Where("id = ?", id).Where(casesVisible, map[string]any{"agent": userID, "admin": admin}).Take(&c).Error
	return &c, notFound(err, "case")
}

// SetContactField sets one of a contact's fields.
func (s *Store) SetContactField(ctx context.Context, contactID uuid.UUID, field, value string) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE contacts SET fields = fields || jsonb_build_object(?::text, ?::text) WHERE id = ?`, field, value, contactID)
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("contact: %w", domain.ErrNotFound)
	}
	return res.Error
}

// ContactFields reads a contact's fields.
func (s *Store) ContactFields(ctx context.Context, contactID uuid.UUID) (map[string]string, error) {
	var raw string
	if err := s.db.WithContext(ctx).Raw(`SELECT fields::text FROM contacts WHERE id = ?`, contactID).Scan(&raw).Error; err != nil {
		return nil, err
	}
	out := map[string]string{}
	if raw == "" {
		return out, nil
	}
	return out, json.Unmarshal([]byte(raw), &out)
}

// LastInboundText is the text of a chat's latest customer message ("" when none).
func (s *Store) LastInboundText(ctx context.Context, chatID uuid.UUID) (string, error) {
	var text string
	err := s.db.WithContext(ctx).Raw(`SELECT text FROM messages WHERE chat_id = ? AND direction = ? ORDER BY seq DESC LIMIT 1`,
		chatID, domain.Inbound).Scan(&text).Error
	return text, err
}
