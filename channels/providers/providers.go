// Package providers assembles the registry of every channel provider omnichat serves.
package providers

import (
	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/channels/facebook"
	"github.com/omnichat/omnichat/channels/telegram"
)

// New builds the registry, with the messengers' API base URLs (fakes in tests).
func New(telegramURL, facebookGraphURL string) (*channels.Registry, error) {
	tg, err := telegram.New(telegramURL, nil)
	if err != nil {
		return nil, err
	}
	fb, err := facebook.New(facebookGraphURL, nil)
	if err != nil {
		return nil, err
	}
	return channels.NewRegistry(apichannel.New(nil), tg, fb), nil
}
