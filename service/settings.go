package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
)

// Settings manages the system settings.
type Settings struct {
	store *models.Store
}

// SettingValue is a setting with its current value; a file setting's value
// describes the uploaded file.
type SettingValue struct {
	SettingDef
	Value string
}

// Def finds a setting's definition; ErrNotFound for an unknown code.
func (s *Settings) Def(code string) (SettingDef, error) {
	def, ok := models.SettingDefByCode(code)
	if !ok {
		return def, fmt.Errorf("no setting %s: %w", code, domain.ErrNotFound)
	}
	return def, nil
}

func (s *Settings) value(ctx context.Context, def SettingDef) (SettingValue, error) {
	out := SettingValue{SettingDef: def}
	if def.Kind == "file" {
		f, err := s.store.GetSettingFile(ctx, def.Code)
		switch {
		case err == nil:
			out.Value = fmt.Sprintf("uploaded %s, %d bytes", f.MediaType, len(f.Content))
		case !errors.Is(err, domain.ErrNotFound):
			return out, err
		}
		return out, nil
	}
	v, err := s.store.GetSetting(ctx, def.Code)
	out.Value = v
	return out, err
}

// List returns every setting in a stable order.
func (s *Settings) List(ctx context.Context) ([]SettingValue, error) {
	out := make([]SettingValue, 0, len(models.SettingDefs))
	for _, def := range models.SettingDefs {
		v, err := s.value(ctx, def)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns one setting.
func (s *Settings) Get(ctx context.Context, code string) (SettingValue, error) {
	def, err := s.Def(code)
	if err != nil {
		return SettingValue{}, err
	}
	return s.value(ctx, def)
}

// Set validates and stores a setting's value. A higher SimultaneousChats
// frees capacity, so routing is woken with it.
func (s *Settings) Set(ctx context.Context, code, value string) (SettingValue, error) {
	def, err := s.Def(code)
	if err != nil {
		return SettingValue{}, err
	}
	err = wakeRoutingAfter(ctx, s.store, func(tx *models.Store) (bool, error) {
		_, err := tx.SetSetting(ctx, code, value)
		return code == models.SettingSimultaneousChats, err
	})
	if err != nil {
		return SettingValue{}, err
	}
	return s.value(ctx, def)
}

// SetFile stores a file-valued setting (the notification sound).
func (s *Settings) SetFile(ctx context.Context, code, mediaType string, content []byte) (SettingValue, error) {
	def, err := s.Def(code)
	if err != nil {
		return SettingValue{}, err
	}
	if def.Kind != "file" {
		return SettingValue{}, fmt.Errorf("%s is not a file setting: %w", code, domain.ErrInvalid)
	}
	if err := s.store.SetSettingFile(ctx, code, mediaType, content); err != nil {
		return SettingValue{}, err
	}
	return s.value(ctx, def)
}

// Reset restores a setting's default.
func (s *Settings) Reset(ctx context.Context, code string) (SettingValue, error) {
	def, err := s.Def(code)
	if err != nil {
		return SettingValue{}, err
	}
	if err := s.store.ResetSetting(ctx, code); err != nil {
		return SettingValue{}, err
	}
	return s.value(ctx, def)
}

// NotificationSound is the sound agents' panels play: the uploaded one, or the built-in chime.
func (s *Settings) NotificationSound(ctx context.Context) (mediaType string, content []byte, err error) {
	f, err := s.store.GetSettingFile(ctx, models.SettingNotificationSound)
	switch {
	case err == nil:
		return f.MediaType, f.Content, nil
	case errors.Is(err, domain.ErrNotFound):
		return "audio/wav", defaultSound, nil
	}
	return "", nil, err
}
