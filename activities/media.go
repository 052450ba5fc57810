package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/models"
)

// FetchRequest names an attachment to fetch.
type FetchRequest struct {
	AttachmentID string
}

// FetchAttachment downloads a file from its provider and stores it. A refusal
// (too large, a forbidden host or media type, gone) marks it failed with the
// reason and is not retried.
func (a *Activities) FetchAttachment(ctx context.Context, r FetchRequest) error {
	id, err := parseID("attachment", r.AttachmentID)
	if err != nil {
		return err
	}
	att, err := a.Store.GetAttachment(ctx, id)
	if err != nil {
		return domainError(err)
	}
	if att.Status != models.AttachmentPending {
		return nil
	}
	ch, p, ok, err := a.channelProvider(ctx, att.ChannelID)
	if err != nil {
		return err
	}
	if !ok {
		return a.Store.FailAttachment(ctx, id, "channel provider "+ch.Provider+" is not available")
	}
	got, err := p.Attachment(ctx, ChannelConfig(ch), channels.AttachmentRef{Kind: att.Kind, RemoteID: att.RemoteID, URL: att.RemoteURL,
		Name: att.Name, MediaType: att.MediaType, Size: att.Size})
	var perm *channels.PermanentError
	switch {
	case errors.As(err, &perm):
		return a.Store.FailAttachment(ctx, id, perm.Reason)
	case errors.Is(err, channels.ErrNotSupported):
		return a.Store.FailAttachment(ctx, id, "this channel does not provide files")
	case err != nil:
		return err
	}
	return a.Files.StoreAttachmentContent(ctx, id, got.MediaType, got.Content)
}

// FailFetch records that a fetch ran out of retries.
func (a *Activities) FailFetch(ctx context.Context, r FetchRequest, reason string) error {
	id, err := parseID("attachment", r.AttachmentID)
	if err != nil {
		return err
	}
	return a.Store.FailAttachment(ctx, id, reason)
}

// ProfileRequest names a contact whose profile to fetch.
type ProfileRequest struct {
	ContactID string
}

// FetchProfile asks the provider for the contact's name and photo. A provider
// that refuses leaves the contact with the name its messages carry.
func (a *Activities) FetchProfile(ctx context.Context, r ProfileRequest) error {
	id, err := parseID("contact", r.ContactID)
	if err != nil {
		return err
	}
	contact, err := a.Store.GetContact(ctx, id)
	if err != nil {
		return domainError(err)
	}
	ch, p, ok, err := a.channelProvider(ctx, contact.ChannelID)
	if err != nil || !ok {
		return err // no provider: nothing to fetch or release
	}
	prof, err := p.Profile(ctx, ChannelConfig(ch), contact.ExternalID)
	var perm *channels.PermanentError
	switch {
	case errors.Is(err, channels.ErrNotSupported), errors.As(err, &perm):
		return nil
	case err != nil:
		return err
	}
	if prof.Name != "" && prof.Name != contact.Name {
		if err := a.Store.SetContactName(ctx, id, prof.Name); err != nil {
			return err
		}
	}
	if prof.Photo == nil {
		return nil
	}
	att, err := a.Store.SetContactPhoto(ctx, id, models.AttachmentInput{Kind: prof.Photo.Kind, RemoteID: prof.Photo.RemoteID,
		URL: prof.Photo.URL, MediaType: prof.Photo.MediaType, Size: prof.Photo.Size})
	if err != nil || att == nil {
		return err
	}
	return a.FetchAttachment(ctx, FetchRequest{AttachmentID: att.ID.String()})
}

// StartRouting moves a bot-owned chat into routing when omnichat gets the conversation.
func (a *Activities) StartRouting(ctx context.Context, r CloseRequest) (QueueInfo, error) {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return QueueInfo{}, err
	}
	info, err := a.Store.StartRouting(ctx, chatID)
	if err != nil {
		return QueueInfo{}, domainError(err)
	}
	return QueueInfo{QueueID: info.QueueID.String(), RoutingRule: info.RoutingRule, CompletionTimeout: info.CompletionTimeout}, nil
}

// ReleaseThread hands a closed chat's conversation back to the channel's bot app.
func (a *Activities) ReleaseThread(ctx context.Context, r CloseRequest) error {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return err
	}
	chat, err := a.Store.GetChat(ctx, chatID)
	if err != nil {
		return domainError(err)
	}
	ch, p, ok, err := a.channelProvider(ctx, chat.ChannelID)
	if err != nil || !ok {
		return err // no provider: nothing to fetch or release
	}
	rel, ok := p.(channels.ThreadReleaser)
	if !ok {
		return nil
	}
	err = rel.ReleaseThread(ctx, ChannelConfig(ch), chat.ConversationID)
	var perm *channels.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(perm.Reason, errPermanentSend, nil)
	}
	return err
}

// DeliverResult tells the chat how long to wait before its next message.
type DeliverResult struct {
	Pause time.Duration
}
