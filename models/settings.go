package models

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/omnichat/omnichat/domain"
)

// System setting codes.
const (
	SettingAcceptTimeout       = "OmniChatOperatorAcceptChatTimeout"
	SettingSimultaneousChats   = "SimultaneousChats"
	SettingSiteURL             = "SiteUrl"
	SettingNotificationSound   = "OmniChatNotificationSound"
	SettingActionHTTPAllowList = "ActionHttpAllowList"
)

// SettingDef describes one system setting.
type SettingDef struct {
	Code        string
	Kind        string // minutes, integer, url, file
	Default     string
	Description string
}

// SettingDefs lists the system settings in a stable order.
var SettingDefs = []SettingDef{
	{SettingAcceptTimeout, "minutes", "5", "Minutes an agent has to accept an offered chat before it goes to the next agent and the agent becomes inactive. Decimals allowed."},
	{SettingSimultaneousChats, "integer", "2", "Most chats one agent handles at once, across all channels (in progress plus pending offers)."},
	{SettingSiteURL, "url", "", "Public base URL of omnichat; messenger webhooks are registered under it."},
	{SettingNotificationSound, "file", "", "Audio file agents' panels play on a new chat; empty means the built-in sound."},
	{SettingActionHTTPAllowList, "hosts", "", "Hosts (names or IPs, comma-separated) that no-code actions' HTTP steps may call although they are in a private, loopback or link-local network."},
}

// SettingDefByCode finds a setting definition.
func SettingDefByCode(code string) (SettingDef, bool) {
	for _, d := range SettingDefs {
		if d.Code == code {
			return d, true
		}
	}
	return SettingDef{}, false
}

// ValidateSetting checks a value against its setting's kind and returns it normalised.
func ValidateSetting(def SettingDef, v string) (string, error) {
	switch def.Kind {
	case "minutes":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) || f > 60*24*30 {
			return "", fmt.Errorf("%s must be a positive number of minutes (decimals allowed): %w", def.Code, domain.ErrInvalid)
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case "integer":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return "", fmt.Errorf("%s must be a whole number from 1 to 1000: %w", def.Code, domain.ErrInvalid)
		}
		return strconv.Itoa(n), nil
	case "url":
		if v == "" {
			return v, nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", fmt.Errorf("%s must be an absolute http(s) URL: %w", def.Code, domain.ErrInvalid)
		}
		return v, nil
	case "hosts":
		var hosts []string
		for _, h := range strings.Split(v, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" {
				continue
			}
			if !hostPattern.MatchString(h) {
				return "", fmt.Errorf("%s must list host names or IP addresses separated by commas (%q is neither): %w", def.Code, h, domain.ErrInvalid)
			}
			hosts = append(hosts, h)
		}
		return strings.Join(hosts, ","), nil
	default:
		return "", fmt.Errorf("%s is a file; upload it with its media type: %w", def.Code, domain.ErrInvalid)
	}
}

var hostPattern = regexp.MustCompile(`^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[?[0-9a-f:.]+\]?$`)

// GetSetting returns a setting's stored value or its default.
func (s *Store) GetSetting(ctx context.Context, code string) (string, error) {
	vals, err := s.getSettings(ctx, code)
	return vals[code], err
}

// getSettings reads settings in one query, each its stored value or its default.
func (s *Store) getSettings(ctx context.Context, codes ...string) (map[string]string, error) {
	vals := make(map[string]string, len(codes))
	for _, code := range codes {
		def, ok := SettingDefByCode(code)
		if !ok {
			return nil, fmt.Errorf("setting %s: %w", code, domain.ErrNotFound)
		}
		vals[code] = def.Default
	}
	var rows []Setting
	if err := s.db.WithContext(ctx).Where("code IN ?", codes).Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		vals[r.Code] = r.Value
	}
	return vals, nil
}

// SetSetting stores a validated setting value.
func (s *Store) SetSetting(ctx context.Context, code, value string) (string, error) {
	def, ok := SettingDefByCode(code)
	if !ok {
		return "", fmt.Errorf("setting %s: %w", code, domain.ErrNotFound)
	}
	v, err := ValidateSetting(def, value)
	if err != nil {
		return "", err
	}
	err = s.db.WithContext(ctx).Exec(`INSERT INTO settings (code, value, updated_at) VALUES (?, ?, now())
		ON CONFLICT (code) DO UPDATE SET value = excluded.value, updated_at = now()`, code, v).Error
	return v, err
}

// ResetSetting restores a setting's default.
func (s *Store) ResetSetting(ctx context.Context, code string) error {
	if _, ok := SettingDefByCode(code); !ok {
		return fmt.Errorf("setting %s: %w", code, domain.ErrNotFound)
	}
	db := s.db.WithContext(ctx)
	if err := db.Delete(&Setting{}, "code = ?", code).Error; err != nil {
		return err
	}
	return db.Delete(&SettingFile{}, "code = ?", code).Error
}

// SetSettingFile stores a file-valued setting.
func (s *Store) SetSettingFile(ctx context.Context, code, mediaType string, content []byte) error {
	return s.db.WithContext(ctx).Exec(`INSERT INTO setting_files (code, media_type, content, updated_at) VALUES (?, ?, ?, now())
		ON CONFLICT (code) DO UPDATE SET media_type = excluded.media_type, content = excluded.content, updated_at = now()`,
		code, mediaType, content).Error
}

// GetSettingFile loads a file-valued setting, domain.ErrNotFound when none was uploaded.
func (s *Store) GetSettingFile(ctx context.Context, code string) (*SettingFile, error) {
	var f SettingFile
	return &f, notFound(s.db.WithContext(ctx).First(&f, "code = ?", code).Error, "setting file")
}

// RoutingSettings are the settings routing needs, read together.
type RoutingSettings struct {
	SimultaneousChats int
	AcceptTimeout     time.Duration
}

// GetRoutingSettings reads SimultaneousChats and the accept timeout in one
// query: routing reads them on every pass and every claim.
func (s *Store) GetRoutingSettings(ctx context.Context) (RoutingSettings, error) {
	var rs RoutingSettings
	vals, err := s.getSettings(ctx, SettingSimultaneousChats, SettingAcceptTimeout)
	if err != nil {
		return rs, err
	}
	if rs.SimultaneousChats, err = strconv.Atoi(vals[SettingSimultaneousChats]); err != nil {
		return rs, fmt.Errorf("setting %s: %w", SettingSimultaneousChats, err)
	}
	m, err := strconv.ParseFloat(vals[SettingAcceptTimeout], 64)
	if err != nil {
		return rs, fmt.Errorf("setting %s: %w", SettingAcceptTimeout, err)
	}
	rs.AcceptTimeout = MinutesToDuration(m)
	return rs, nil
}
