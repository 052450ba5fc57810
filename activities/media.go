package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/service"
)

// maxProviderFailures is how often a provider may fail a download, a profile
// or a handover before omnichat gives it up; failures of omnichat's own
// database are not counted and are retried until it answers.
const maxProviderFailures = 5

// Media downloads inbound files and contact profiles, and hands
// conversations back to bots.
type Media struct {
	Chats    *service.Chats
	Channels *service.Channels
}

// Register adds the group's activities to a worker.
func (a *Media) Register(r Registry) { register(r, a) }

// FetchRequest names an attachment to fetch.
type FetchRequest struct {
	AttachmentID string
}

// FetchAttachment downloads a file from its provider and stores it. A refusal
// (too large, a forbidden host or media type, gone) marks it failed with the
// reason; so does the last of maxProviderFailures failed downloads.
func (a *Media) FetchAttachment(ctx context.Context, r FetchRequest) error {
	id, err := parseID("attachment", r.AttachmentID)
	if err != nil {
		return err
	}
	ids := []any{"AttachmentID", r.AttachmentID}
	att, err := a.Chats.PendingAttachment(ctx, id)
	if err != nil || att == nil {
		return failed(ctx, err, ids...)
	}
	ch, p, ok, err := a.Channels.Provider(ctx, att.ChannelID)
	if err != nil {
		return failed(ctx, err, ids...)
	}
	giveUp := func(reason string) error { return failed(ctx, a.Chats.FailAttachment(ctx, id, reason), ids...) }
	if !ok {
		return giveUp("channel provider " + ch.Provider + " is not available")
	}
	got, err := p.Attachment(ctx, service.Config(ch), att.Ref())
	var perm *channels.PermanentError
	switch {
	case errors.As(err, &perm):
		return giveUp(perm.Reason)
	case errors.Is(err, channels.ErrNotSupported):
		return giveUp("this channel does not provide files")
	case err != nil:
		if exhausted, err := a.exhausted(ctx, "fetch:"+r.AttachmentID, err); exhausted || err != nil {
			if err != nil {
				return failed(ctx, err, ids...)
			}
			return giveUp(fmt.Sprintf("not downloaded after %d attempts", maxProviderFailures))
		}
		return failed(ctx, err, ids...)
	}
	return failed(ctx, a.Chats.StoreAttachment(ctx, id, got), ids...)
}

// exhausted counts a provider's failure for an item; see Channels.ProviderFailed.
func (a *Media) exhausted(ctx context.Context, key string, failure error) (bool, error) {
	return a.Channels.ProviderFailed(ctx, key, maxProviderFailures, failure)
}

// ProfileRequest names a contact whose profile to fetch.
type ProfileRequest struct {
	ContactID string
}

// FetchProfile asks the provider for the contact's name and photo. A provider
// that refuses, or keeps failing, leaves the contact with the name its
// messages carry.
func (a *Media) FetchProfile(ctx context.Context, r ProfileRequest) error {
	id, err := parseID("contact", r.ContactID)
	if err != nil {
		return err
	}
	ids := []any{"ContactID", r.ContactID}
	contact, err := a.Chats.Contact(ctx, id)
	if err != nil {
		return failed(ctx, err, ids...)
	}
	ch, p, ok, err := a.Channels.Provider(ctx, contact.ChannelID)
	if err != nil || !ok {
		return failed(ctx, err, ids...) // no provider: nothing to fetch
	}
	prof, err := p.Profile(ctx, service.Config(ch), contact.ExternalID)
	var perm *channels.PermanentError
	switch {
	case errors.Is(err, channels.ErrNotSupported), errors.As(err, &perm):
		return nil
	case err != nil:
		exhausted, dbErr := a.exhausted(ctx, "profile:"+r.ContactID, err)
		if exhausted {
			activity.GetLogger(ctx).Warn("contact profile given up", append(ids, "Error", err)...)
			return nil
		}
		return failed(ctx, errors.Join(err, dbErr), ids...)
	}
	photo, err := a.Chats.ApplyProfile(ctx, contact, prof)
	if err != nil || photo == nil {
		return failed(ctx, err, ids...)
	}
	return a.FetchAttachment(ctx, FetchRequest{AttachmentID: photo.ID.String()})
}

// ReleaseThread hands a closed chat's conversation back to the channel's bot app.
func (a *Media) ReleaseThread(ctx context.Context, r CloseRequest) error {
	chatID, err := parseID("chat", r.ChatID)
	if err != nil {
		return err
	}
	ids := []any{"ChatID", r.ChatID}
	chat, err := a.Chats.Chat(ctx, chatID)
	if err != nil {
		return failed(ctx, err, ids...)
	}
	ch, p, ok, err := a.Channels.Provider(ctx, chat.ChannelID)
	if err != nil || !ok {
		return failed(ctx, err, ids...) // no provider: nothing to release
	}
	rel, ok := p.(channels.ThreadReleaser)
	if !ok {
		return nil
	}
	err = rel.ReleaseThread(ctx, service.Config(ch), chat.ConversationID)
	var perm *channels.PermanentError
	switch {
	case errors.As(err, &perm):
		return permanent(perm.Reason)
	case err != nil:
		exhausted, dbErr := a.exhausted(ctx, "release:"+r.ChatID, err)
		if exhausted {
			return permanent(fmt.Sprintf("not handed back after %d attempts: %v", maxProviderFailures, err))
		}
		return failed(ctx, errors.Join(err, dbErr), ids...)
	}
	return nil
}
