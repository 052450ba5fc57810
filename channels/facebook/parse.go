package facebook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
)

// The parts of a Messenger webhook body omnichat reads.
type payload struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID        string            `json:"id"`
	Time      int64             `json:"time"`
	Messaging []json.RawMessage `json:"messaging"`
	Standby   []json.RawMessage `json:"standby"`
}

type event struct {
	Sender    struct{ ID string } `json:"sender"`
	Recipient struct{ ID string } `json:"recipient"`
	Timestamp int64               `json:"timestamp"`
	Message   *struct {
		Mid         string `json:"mid"`
		Text        string `json:"text"`
		IsEcho      bool   `json:"is_echo"`
		Attachments []struct {
			Type    string `json:"type"`
			Payload struct {
				URL         string `json:"url"`
				Title       string `json:"title"`
				Coordinates *struct {
					Lat  float64 `json:"lat"`
					Long float64 `json:"long"`
				} `json:"coordinates"`
			} `json:"payload"`
		} `json:"attachments"`
	} `json:"message"`
	Delivery *struct {
		Watermark int64 `json:"watermark"`
	} `json:"delivery"`
	Read *struct {
		Watermark int64 `json:"watermark"`
	} `json:"read"`
	Postback *struct {
		Title string `json:"title"`
	} `json:"postback"`
	PassThreadControl *struct {
		NewOwnerAppID string `json:"new_owner_app_id"`
	} `json:"pass_thread_control"`
	TakeThreadControl *struct {
		PreviousOwnerAppID string `json:"previous_owner_app_id"`
		NewOwnerAppID      string `json:"new_owner_app_id"`
	} `json:"take_thread_control"`
}

func ms(t int64) time.Time { return time.UnixMilli(t).UTC() }

// ParseWebhook implements channels.Provider. One POST can carry several
// entries and events; an event that cannot be read is skipped, the others are
// kept. Events omnichat does not handle yield nothing.
func (p *Provider) ParseWebhook(cfg channels.Config, body []byte) ([]domain.InboundMessage, error) {
	var pl payload
	if err := json.Unmarshal(body, &pl); err != nil {
		return nil, fmt.Errorf("%w: %v", channels.ErrBadPayload, err)
	}
	if pl.Object != "page" {
		return nil, nil
	}
	var out []domain.InboundMessage
	for _, e := range pl.Entry {
		for _, raw := range e.Messaging {
			if m, ok := p.parseEvent(cfg, raw, false); ok {
				out = append(out, m)
			}
		}
		for _, raw := range e.Standby {
			if m, ok := p.parseEvent(cfg, raw, true); ok {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func (p *Provider) parseEvent(cfg channels.Config, raw json.RawMessage, standby bool) (domain.InboundMessage, bool) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Sender.ID == "" {
		return domain.InboundMessage{}, false
	}
	ourApp := cfg.Settings[SettingAppID]
	um := domain.InboundMessage{ConversationID: ev.Sender.ID, SenderID: ev.Sender.ID, SentAt: ms(ev.Timestamp), Standby: standby}
	switch {
	case ev.Message != nil && ev.Message.IsEcho:
		if standby || ev.Message.Mid == "" {
			return um, false
		}
		// Our page's own message: the customer is the recipient.
		um.ConversationID, um.Event, um.ExternalID = ev.Recipient.ID, domain.EventEcho, ev.Message.Mid
	case ev.Message != nil:
		if ev.Message.Mid == "" {
			return um, false
		}
		um.ExternalID, um.Text, um.Kind = ev.Message.Mid, ev.Message.Text, domain.KindText
		for _, a := range ev.Message.Attachments {
			switch a.Type {
			case "image", "audio", "video", "file":
				kind := map[string]string{"image": domain.KindPhoto, "audio": domain.KindAudio, "video": domain.KindVideo, "file": domain.KindDocument}[a.Type]
				if um.Kind == domain.KindText && um.Text == "" {
					um.Kind = kind
				}
				if a.Payload.URL != "" {
					um.Attachments = append(um.Attachments, domain.AttachmentRef{Kind: kind, URL: a.Payload.URL})
				}
			case "location":
				if c := a.Payload.Coordinates; c != nil {
					um.Kind, um.Text = domain.KindLocation, fmt.Sprintf("[location] %.6f, %.6f", c.Lat, c.Long)
				}
			default:
				if um.Text == "" {
					um.Kind, um.Text = domain.KindUnsupported, strings.TrimSpace("["+a.Type+"] "+a.Payload.Title)
				}
			}
		}
		if um.Text == "" && len(um.Attachments) == 0 {
			um.Kind, um.Text = domain.KindUnsupported, "[a message of a kind omnichat does not show]"
		}
	case ev.Postback != nil && !standby:
		um.ExternalID = fmt.Sprintf("postback:%s:%d", ev.Sender.ID, ev.Timestamp)
		um.Kind, um.Text = domain.KindText, "[button] "+ev.Postback.Title
	case ev.Delivery != nil && !standby:
		um.Event, um.Watermark = domain.EventDelivered, ms(ev.Delivery.Watermark)
	case ev.Read != nil && !standby:
		um.Event, um.Watermark = domain.EventRead, ms(ev.Read.Watermark)
	case ev.PassThreadControl != nil:
		um.Event = domain.EventHandoverToBot
		if ourApp != "" && ev.PassThreadControl.NewOwnerAppID == ourApp {
			um.Event = domain.EventHandoverToUs
		}
	case ev.TakeThreadControl != nil:
		if ourApp == "" || ev.TakeThreadControl.NewOwnerAppID == ourApp {
			return um, false
		}
		um.Event = domain.EventHandoverToBot
	default:
		return um, false
	}
	return um, true
}
