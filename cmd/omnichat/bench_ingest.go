package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnichat/omnichat/models"
)

// storedNow counts the bench channel's customer messages in PostgreSQL.
func (b *bench) storedNow(ctx context.Context, store *models.Store) (int64, error) {
	var n int64
	err := store.Raw(ctx, &n, `SELECT count(*) FROM messages WHERE channel_id = ? AND direction = 'inbound'`, b.channel)
	return n, err
}

// eventClock follows the admin's event stream and notes when each message's
// message.created event arrived.
type eventClock struct {
	mu   sync.Mutex
	seen map[string]time.Time
	cond chan struct{}
}

func (b *bench) followEvents(ctx context.Context) (*eventClock, error) {
	ec := &eventClock{seen: map[string]time.Time{}, cond: make(chan struct{})}
	req, err := http.NewRequestWithContext(ctx, "GET", b.f.api+"/api/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.agentToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("event stream: %s", resp.Status)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		typ := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && typ == "message.created":
				var d struct {
					MessageID string `json:"message_id"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d) == nil && d.MessageID != "" {
					ec.mu.Lock()
					ec.seen[d.MessageID] = time.Now()
					ec.mu.Unlock()
				}
			case line == "":
				typ = ""
			}
		}
	}()
	return ec, nil
}

func (ec *eventClock) at(id string) (time.Time, bool) {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	t, ok := ec.seen[id]
	return t, ok
}

// openConversations opens n conversations with one message each and returns
// their chat IDs once their chats exist.
func (b *bench) openConversations(ctx context.Context, store *models.Store, channel, prefix string, n int) ([]string, []string, error) {
	convs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		convs[i] = fmt.Sprintf("%s-%s-%d", prefix, b.runID, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, ok := b.postText(ctx, channel, convs[i], convs[i]+"-open", "opening"); ok {
					return
				}
			}
		}()
	}
	wg.Wait()
	ids := make([]string, n)
	deadline := time.Now().Add(5 * time.Minute)
	for i, conv := range convs {
		for ids[i] == "" {
			var got []string
			if err := store.Raw(ctx, &got, `SELECT id::text FROM chats WHERE channel_id = ? AND conversation_id = ? AND status <> 'closed'`, channel, conv); err != nil {
				return nil, nil, err
			}
			if len(got) > 0 {
				ids[i] = got[0]
				break
			}
			if time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("conversation %s opened no chat within 5 minutes", conv)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return convs, ids, nil
}

type visibility struct {
	sent, accepted, sampled, missingGet, missingEvent int64
	rate                                              float64
	ack, get, event                                   []time.Duration
}

// visible sends messages to open chats at a fixed rate and measures, for
// every sampleEvery-th, the time from the webhook's 200 to the message in
// GET /chats/{id}/messages, and to its message.created event on the stream.
func (b *bench) visible(ctx context.Context, store *models.Store) (visibility, error) {
	const convs = 64
	const sampleEvery = 4
	names, chatIDs, err := b.openConversations(ctx, store, b.visChannel, "visible", convs)
	if err != nil {
		return visibility{}, err
	}
	ec, err := b.followEvents(ctx)
	if err != nil {
		return visibility{}, err
	}
	var (
		v            visibility
		mu           sync.Mutex
		sent, ok     atomic.Int64
		missGet, mis atomic.Int64
	)
	jobs := make([]chan int, convs)
	var wg, evWait sync.WaitGroup
	for w := range convs {
		jobs[w] = make(chan int, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cursor, n := "", 0
			for i := range jobs[w] {
				text := fmt.Sprintf("visible %s %d", b.runID, i)
				took, good := b.postText(ctx, b.visChannel, names[w], fmt.Sprintf("v-%s-%d", b.runID, i), text)
				acked := time.Now()
				if !good {
					continue
				}
				ok.Add(1)
				mu.Lock()
				v.ack = append(v.ack, took)
				mu.Unlock()
				if n++; n%sampleEvery != 0 {
					continue
				}
				id, seen, next := b.findMessage(ctx, chatIDs[w], cursor, text, acked.Add(10*time.Second))
				cursor = next
				if id == "" {
					missGet.Add(1)
					continue
				}
				mu.Lock()
				v.sampled++
				v.get = append(v.get, seen.Sub(acked))
				mu.Unlock()
				// The event is awaited apart, so a late one does not slow the sender.
				evWait.Add(1)
				go func() {
					defer evWait.Done()
					deadline := time.Now().Add(10 * time.Second)
					for {
						if at, ok := ec.at(id); ok {
							mu.Lock()
							v.event = append(v.event, max(at.Sub(acked), 0))
							mu.Unlock()
							return
						}
						if time.Now().After(deadline) {
							mis.Add(1)
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / b.f.visibleRate)
	n := int(b.f.visibleFor.Seconds() * b.f.visibleRate)
	start := time.Now()
	for i := range n {
		// Paced from the start, not from the last send: a slow tick does not lower the rate.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent.Add(1)
		select {
		case jobs[i%convs] <- i:
		default:
			// That conversation's sender is 1024 messages behind: the stack
			// does not keep up; count the message as not sent.
			sent.Add(-1)
		}
	}
	for _, j := range jobs {
		close(j)
	}
	wg.Wait()
	v.rate = float64(ok.Load()) / time.Since(start).Seconds()
	evWait.Wait()
	v.sent, v.accepted, v.missingGet, v.missingEvent = sent.Load(), ok.Load(), missGet.Load(), mis.Load()
	return v, nil
}

// findMessage reads the chat's messages after cursor until one has text, and
// returns its ID, when the read that found it returned, and the new cursor.
func (b *bench) findMessage(ctx context.Context, chatID, cursor, text string, deadline time.Time) (string, time.Time, string) {
	for {
		path := "/api/v1/chats/" + chatID + "/messages?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Text string `json:"text"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err := b.callAs(ctx, b.agentToken, "GET", path, nil, &page)
		now := time.Now()
		if err == nil {
			for _, m := range page.Items {
				if m.Text == text {
					if page.NextCursor != "" {
						cursor = page.NextCursor
					}
					return m.ID, now, cursor
				}
			}
			if page.NextCursor != "" {
				cursor = page.NextCursor
				continue
			}
		}
		if now.After(deadline) || ctx.Err() != nil {
			return "", now, cursor
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type bulkResult struct {
	accepted, failed, opened, offered int64
	sendRate, openRate, offerRate     float64
	webhook                           []time.Duration
}

// bulk sends from many senders, every message a new conversation, and counts
// the chats opened and offered per second until the last of them is offered.
func (b *bench) bulk(ctx context.Context, store *models.Store) (bulkResult, error) {
	began := time.Now()
	p := hammer(ctx, b.f.bulkSenders, b.f.bulkFor, func(ctx context.Context, w, i int) (time.Duration, bool) {
		conv := fmt.Sprintf("bulk-%s-%d-%d", b.runID, w, i)
		return b.post(ctx, conv, conv+"-1")
	})
	r := bulkResult{accepted: p.ok, failed: p.failed, sendRate: p.rate, webhook: p.lat}
	like := "bulk-" + b.runID + "-%"
	deadline := time.Now().Add(b.f.offerDrain)
	var lastOpened, lastOffered time.Time
	for {
		var row struct {
			Opened, Offered int64
			LastOpened      *time.Time
			LastOffered     *time.Time
		}
		if err := store.Raw(ctx, &row, `SELECT count(*) AS opened, count(offered_at) AS offered, max(created_at) AS last_opened, max(offered_at) AS last_offered
			FROM chats WHERE channel_id = ? AND conversation_id LIKE ?`, b.channel, like); err != nil {
			return r, err
		}
		r.opened, r.offered = row.Opened, row.Offered
		if row.LastOpened != nil {
			lastOpened = *row.LastOpened
		}
		if row.LastOffered != nil {
			lastOffered = *row.LastOffered
		}
		if r.offered >= r.accepted || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := lastOpened.Sub(began).Seconds(); d > 0 {
		r.openRate = float64(r.opened) / d
	}
	if d := lastOffered.Sub(began).Seconds(); d > 0 {
		r.offerRate = float64(r.offered) / d
	}
	return r, nil
}
