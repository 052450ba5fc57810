package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/telemetry"
)

// commandTimeout bounds how long an agent's request waits for its chat's
// workflow. A workflow that cannot answer sooner (the database or a worker is
// away) gets the request a 503; the command itself still completes later.
const commandTimeout = 15 * time.Second

// Chats owns chats, their messages and attachments, and contacts: what agents
// read and command, and what the chat workflow records.
type Chats struct {
	store    *models.Store
	files    FileStorage
	runtime  ChatRuntime
	channels *Channels
	metrics  *telemetry.Metrics
}

// MessageView is a message with its attachments (without their content).
type MessageView = models.MessageWithAttachments

// List lists the chats an agent sees, newest first.
func (c *Chats) List(ctx context.Context, p *Principal, f ChatFilter) ([]ChatRow, error) {
	f.Admin = p.Admin
	return c.store.ListAgentChats(ctx, p.ID, f)
}

// Get loads a chat the agent may see: theirs, of a queue they serve, or
// (for admins) bot-owned. Any other chat is ErrNotFound, so IDs do not leak.
func (c *Chats) Get(ctx context.Context, p *Principal, chatID uuid.UUID) (*ChatRow, error) {
	return c.store.AgentChat(ctx, p.ID, chatID, p.Admin)
}

// UnreadCounts counts the open chats an agent sees with unread customer
// messages, and those messages.
func (c *Chats) UnreadCounts(ctx context.Context, agentID uuid.UUID) (chats, messages int, err error) {
	return c.store.UnreadCounts(ctx, agentID)
}

// MarkRead marks every message of a chat as read by its agent. Only the
// assigned agent's reading counts: for anybody else who may see the chat (a
// queue colleague, an admin) it succeeds and changes nothing, so their
// unread badge is not cleared behind their back and a panel that calls it on
// opening a chat sees no error.
func (c *Chats) MarkRead(ctx context.Context, p *Principal, chatID uuid.UUID) error {
	if err := c.store.AgentSeesChat(ctx, p.ID, chatID, p.Admin); err != nil {
		return err
	}
	return c.store.MarkRead(ctx, chatID, p.ID)
}

// Messages pages a chat's conversation, oldest first, after a cursor.
func (c *Chats) Messages(ctx context.Context, p *Principal, chatID uuid.UUID, after int64, limit int) ([]MessageView, error) {
	return c.store.AgentChatMessages(ctx, p.ID, chatID, p.Admin, after, limit)
}

func (c *Chats) withAttachments(ctx context.Context, ms []Message) ([]MessageView, error) {
	out := make([]MessageView, len(ms))
	ids := make([]uuid.UUID, len(ms))
	at := make(map[uuid.UUID]int, len(ms))
	for i := range ms {
		out[i] = MessageView{Message: ms[i], Attachments: []Attachment{}}
		ids[i] = ms[i].ID
		at[ms[i].ID] = i
	}
	atts, err := c.store.MessageAttachments(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.MessageID != nil {
			j := at[*a.MessageID]
			out[j].Attachments = append(out[j].Attachments, a)
		}
	}
	return out, nil
}

// Attachment returns a stored file of a chat the agent may see, or a
// contact's photo; ErrConflict while it is not (or could not be) fetched.
func (c *Chats) Attachment(ctx context.Context, p *Principal, id uuid.UUID) (*Attachment, []byte, error) {
	a, err := c.store.AgentAttachment(ctx, p.ID, id)
	if err != nil {
		return nil, nil, err
	}
	if a.Status != domain.AttachmentStored {
		reason := "the file is not available yet"
		if a.FailReason != nil {
			reason = "the file could not be fetched: " + *a.FailReason
		}
		return nil, nil, fmt.Errorf("%s: %w", reason, domain.ErrConflict)
	}
	mt, content, err := c.files.AttachmentContent(ctx, a.ID)
	if err != nil {
		return nil, nil, err
	}
	a.MediaType = mt
	return a, content, nil
}

// command loads the chat for the agent, refuses a closed one, runs the
// workflow command with a deadline and answers the chat as it is afterwards
// (nil when it left the agent's sight, after a transfer).
func (c *Chats) command(ctx context.Context, p *Principal, chatID uuid.UUID, run func(ctx context.Context, row *ChatRow) error) (*ChatRow, error) {
	row, err := c.Get(ctx, p, chatID)
	if err != nil {
		return nil, err
	}
	if row.Status == domain.ChatClosed {
		return nil, fmt.Errorf("chat is closed: %w", domain.ErrConflict)
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := run(cctx, row); err != nil {
		return nil, err
	}
	after, err := c.Get(ctx, p, chatID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil
	}
	return after, err
}

// Accept makes the agent the chat's agent.
func (c *Chats) Accept(ctx context.Context, p *Principal, chatID uuid.UUID) (*ChatRow, error) {
	return c.command(ctx, p, chatID, func(ctx context.Context, row *ChatRow) error {
		return c.runtime.Accept(ctx, row.WorkflowID, p.ID.String())
	})
}

// Close closes the agent's chat.
func (c *Chats) Close(ctx context.Context, p *Principal, chatID uuid.UUID) (*ChatRow, error) {
	return c.command(ctx, p, chatID, func(ctx context.Context, row *ChatRow) error {
		return c.runtime.Close(ctx, row.WorkflowID, p.ID.String())
	})
}

// TransferInput moves a chat to a queue or to an agent: exactly one is set.
type TransferInput struct {
	QueueID *uuid.UUID
	AgentID *uuid.UUID
}

// Transfer moves the agent's chat to another queue (where it is routed
// afresh) or hands it to another agent of its queue.
func (c *Chats) Transfer(ctx context.Context, p *Principal, chatID uuid.UUID, in TransferInput) (*ChatRow, error) {
	cmd := TransferCommand{AgentID: p.ID.String()}
	if in.QueueID != nil {
		if _, err := c.store.GetQueue(ctx, *in.QueueID); err != nil {
			return nil, err
		}
		cmd.ToQueueID = in.QueueID.String()
	} else if in.AgentID != nil {
		cmd.ToAgentID = in.AgentID.String()
	}
	return c.command(ctx, p, chatID, func(ctx context.Context, row *ChatRow) error {
		return c.runtime.Transfer(ctx, row.WorkflowID, cmd)
	})
}

// Upload is a file an agent sends.
type Upload struct {
	Name, MediaType string
	Content         []byte
}

// SendInput is an agent's reply: text, or a file with an optional caption.
type SendInput struct {
	Text           string
	IdempotencyKey string
	File           *Upload
}

// Send stores the agent's reply and has the chat deliver it. The same
// idempotency key sends once, however often the request is retried.
func (c *Chats) Send(ctx context.Context, p *Principal, chatID uuid.UUID, in SendInput) (view *MessageView, err error) {
	if domain.CleanText(in.Text) != in.Text {
		return nil, fmt.Errorf("text must be valid UTF-8 without NUL characters: %w", domain.ErrInvalid)
	}
	row, err := c.Get(ctx, p, chatID)
	if err != nil {
		return nil, err
	}
	cmd := SendCommand{AgentID: p.ID.String(), Text: in.Text, IdempotencyKey: in.IdempotencyKey}
	if in.File != nil {
		att, uploadErr := c.store.CreateUpload(ctx, row.ChannelID, in.File.Name, in.File.MediaType, in.File.Content)
		if uploadErr != nil {
			return nil, uploadErr
		}
		cmd.AttachmentID = att.ID.String()
		defer func() {
			// A send the chat refused leaves no file behind; one that may
			// still complete (the chat did not answer in time) keeps it.
			if err != nil && domain.KindOf(err) != "" {
				_ = c.store.DeleteUnsentUpload(context.WithoutCancel(ctx), att.ID)
			}
		}()
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	id, err := c.runtime.Send(cctx, row.WorkflowID, cmd)
	if err != nil {
		return nil, err
	}
	msgID, err := uuid.Parse(id)
	if err != nil {
		return nil, fmt.Errorf("chat answered message ID %q: %w", id, err)
	}
	msg, err := c.store.GetMessage(ctx, msgID)
	if err != nil {
		return nil, err
	}
	views, err := c.withAttachments(ctx, []Message{*msg})
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}
