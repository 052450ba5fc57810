package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Channels manages channels (a bot, a page, an API integration) and gives
// the rest of omnichat their providers.
type Channels struct {
	store     *models.Store
	providers *channels.Registry
	logger    *slog.Logger
}

// Config is the provider's view of a channel row.
func Config(ch *Channel) channels.Config {
	return channels.Config{ID: ch.ID.String(), Provider: ch.Provider, Secret: ch.Secret, Settings: ch.Settings}
}

// configWithWebhook adds the webhook URL the provider must use (empty while
// the SiteUrl setting is not set).
func (c *Channels) configWithWebhook(ctx context.Context, ch *Channel) (channels.Config, error) {
	cfg := Config(ch)
	site, err := c.store.GetSetting(ctx, models.SettingSiteURL)
	if err != nil {
		return cfg, err
	}
	if site != "" {
		cfg.WebhookURL = strings.TrimRight(site, "/") + WebhookPath(ch)
	}
	return cfg, nil
}

// WebhookPath is where a channel's provider delivers its updates.
func WebhookPath(ch *Channel) string { return "/webhooks/" + ch.Provider + "/" + ch.ID.String() }

func (c *Channels) provider(name string) (channels.Provider, error) {
	p, ok := c.providers.Get(name)
	if !ok {
		return nil, fmt.Errorf("provider must be one of %s: %w", strings.Join(c.providers.Names(), ", "), domain.ErrInvalid)
	}
	return p, nil
}

// SecretSettings names, sorted, the settings a provider keeps write-only.
func (c *Channels) SecretSettings(provider string) map[string]bool {
	out := map[string]bool{}
	if p, ok := c.providers.Get(provider); ok {
		if sp, ok := p.(interface{ SecretSettings() []string }); ok {
			for _, k := range sp.SecretSettings() {
				out[k] = true
			}
		}
	}
	return out
}

// PublicSettings splits a channel's settings into those that may be shown and
// the names, sorted, of the write-only ones that are set.
func (c *Channels) PublicSettings(ch *Channel) (shown map[string]string, secretSet []string) {
	secret := c.SecretSettings(ch.Provider)
	shown, secretSet = map[string]string{}, []string{}
	for k, v := range ch.Settings {
		if secret[k] {
			secretSet = append(secretSet, k)
			continue
		}
		shown[k] = v
	}
	sort.Strings(secretSet)
	return shown, secretSet
}

// NewChannel describes a channel to create.
type NewChannel struct {
	Provider string
	Name     string
	Active   *bool // nil: active
	QueueID  uuid.UUID
	Secret   string
	Settings map[string]string
}

// Create validates a channel, registers it with its provider when active
// (installs the webhook), then stores it.
func (c *Channels) Create(ctx context.Context, in NewChannel) (*Channel, error) {
	p, err := c.provider(in.Provider)
	if err != nil {
		return nil, err
	}
	ch := &models.Channel{ID: uuid.New(), Provider: in.Provider, Name: in.Name, Active: in.Active == nil || *in.Active,
		QueueID: in.QueueID, Secret: in.Secret, Settings: in.Settings}
	if err := c.register(ctx, p, ch, false); err != nil {
		return nil, err
	}
	return ch, c.store.CreateChannel(ctx, ch)
}

// register validates a channel and tells its provider: registration when it
// is (still) active, unregistration when it was active and no longer is.
func (c *Channels) register(ctx context.Context, p channels.Provider, ch *Channel, wasActive bool) error {
	cfg, err := c.configWithWebhook(ctx, ch)
	if err != nil {
		return err
	}
	if err := p.Validate(cfg); err != nil {
		return err
	}
	if _, err := c.store.GetQueue(ctx, ch.QueueID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return fmt.Errorf("queue_id: no such queue: %w", domain.ErrInvalid)
		}
		return err
	}
	switch {
	case ch.Active:
		return p.Register(ctx, cfg)
	case wasActive:
		return p.Unregister(ctx, cfg)
	}
	return nil
}

// Get loads a channel.
func (c *Channels) Get(ctx context.Context, id uuid.UUID) (*Channel, error) {
	return c.store.GetChannel(ctx, id)
}

// List lists channels by name.
func (c *Channels) List(ctx context.Context) ([]Channel, error) { return c.store.ListChannels(ctx) }

// ChannelPatch changes the fields that are set. Settings are merged into the
// stored ones, so a write-only setting survives a change of another; an empty
// value removes a setting.
type ChannelPatch struct {
	Name     *string
	Active   *bool
	QueueID  *uuid.UUID
	Secret   *string
	Settings map[string]string
}

// Update changes a channel, re-validates it and tells its provider.
func (c *Channels) Update(ctx context.Context, id uuid.UUID, p ChannelPatch) (*Channel, error) {
	ch, err := c.store.GetChannel(ctx, id)
	if err != nil {
		return nil, err
	}
	provider, err := c.provider(ch.Provider)
	if err != nil {
		return nil, err
	}
	wasActive := ch.Active
	if p.Name != nil {
		ch.Name = *p.Name
	}
	if p.Active != nil {
		ch.Active = *p.Active
	}
	if p.QueueID != nil {
		ch.QueueID = *p.QueueID
	}
	if p.Secret != nil {
		ch.Secret = *p.Secret
	}
	if p.Settings != nil {
		merged := models.JSONMap{}
		for k, v := range ch.Settings {
			merged[k] = v
		}
		for k, v := range p.Settings {
			if v == "" {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		ch.Settings = merged
	}
	if err := c.register(ctx, provider, ch, wasActive); err != nil {
		return nil, err
	}
	return ch, c.store.SaveChannel(ctx, ch)
}

// Delete removes a channel that never had a chat and unregisters it from its
// provider; an unregistration that fails is logged, the channel stays deleted.
func (c *Channels) Delete(ctx context.Context, id uuid.UUID) error {
	ch, err := c.store.GetChannel(ctx, id)
	if err != nil {
		return err
	}
	if err := c.store.DeleteChannel(ctx, ch.ID); err != nil {
		return err
	}
	if p, ok := c.providers.Get(ch.Provider); ok && ch.Active {
		cfg, err := c.configWithWebhook(ctx, ch)
		if err == nil {
			err = p.Unregister(ctx, cfg)
		}
		if err != nil {
			c.logger.WarnContext(ctx, "channel deleted but provider unregister failed", "channel", ch.ID, "error", err)
		}
	}
	return nil
}

// Provider loads a channel and its provider; ok is false when this build
// does not serve the channel's provider.
func (c *Channels) Provider(ctx context.Context, channelID uuid.UUID) (*Channel, channels.Provider, bool, error) {
	ch, err := c.store.GetChannel(ctx, channelID)
	if err != nil {
		return nil, nil, false, err
	}
	p, ok := c.providers.Get(ch.Provider)
	return ch, p, ok, nil
}

// Traits tells whether a channel's contacts have profiles to fetch and
// whether it hands conversations back to a bot app when a chat closes.
func (c *Channels) Traits(ctx context.Context, channelID uuid.UUID) (profiles, releases bool, err error) {
	ch, p, ok, err := c.Provider(ctx, channelID)
	if err != nil || !ok {
		return false, false, err
	}
	_, noProfiles := p.(channels.ProfileLess)
	r, ok := p.(interface {
		ReleasesThread(cfg channels.Config) bool
	})
	return !noProfiles, ok && r.ReleasesThread(Config(ch)), nil
}

// ProviderFailed counts one more provider failure for an item (key names
// it, such as "deliver:<message>") and reports whether the item has now used
// its limit of attempts. When the database does not answer, the failure is
// not counted and that error is returned.
func (c *Channels) ProviderFailed(ctx context.Context, key string, limit int, failure error) (exhausted bool, err error) {
	n, err := c.store.CountProviderFailure(ctx, key, failure.Error())
	if err != nil {
		return false, err
	}
	return n >= limit, nil
}

// ProviderSucceeded forgets an item's failures.
func (c *Channels) ProviderSucceeded(ctx context.Context, key string) error {
	return c.store.ForgetProviderFailures(ctx, key)
}
