package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/channels/apichannel"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/service"
	"github.com/omnichat/omnichat/testenv"
)

// runtime records the offers routing tells chats of; the first failures
// notifications fail, as when Temporal is away.
type runtime struct {
	service.ChatRuntime // the other commands are not used here
	mu                  sync.Mutex
	offered             map[uuid.UUID]uuid.UUID
	failures            int
}

func (r *runtime) NotifyOffer(_ context.Context, o service.Offer, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return errors.New("temporal: connection refused")
	}
	r.offered[o.ChatID] = o.AgentID
	return nil
}

func (r *runtime) offers() map[uuid.UUID]uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uuid.UUID]uuid.UUID, len(r.offered))
	for k, v := range r.offered {
		out[k] = v
	}
	return out
}

type routingFixture struct {
	t       *testing.T
	ctx     context.Context
	store   *models.Store
	svc     *service.Services
	runtime *runtime
}

func newRouting(t *testing.T, safety time.Duration) *routingFixture {
	_, store := testenv.NewDatabase(t)
	rt := &runtime{offered: map[uuid.UUID]uuid.UUID{}}
	f := &routingFixture{t: t, ctx: context.Background(), store: store, runtime: rt,
		svc: service.New(service.Deps{Store: store, Providers: channels.NewRegistry(apichannel.New(nil)), Runtime: rt,
			RoutingSafetyInterval: safety, Logger: testenv.Logger()})}
	return f
}

// run starts the dispatcher and waits until it listens for wake-ups.
func (f *routingFixture) run() {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.svc.Routing.Run(ctx)
	}()
	f.t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(f.t, 10*time.Second, "the dispatcher listens", func() bool {
		var n int
		err := f.store.Raw(f.ctx, &n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN omnichat_routing'`)
		return err == nil && n == 1
	})
}

func (f *routingFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// queue makes an available_agent queue with a channel and n agents of the given status.
func (f *routingFixture) queue(name string, agents int, status string) (*models.Channel, []uuid.UUID) {
	f.t.Helper()
	q, err := f.svc.Queues.Create(f.ctx, service.NewQueue{Name: name, RoutingRule: domain.RuleAvailableAgent})
	f.must(err)
	ch := &models.Channel{Provider: apichannel.Name, Name: name, Active: true, QueueID: q.ID, Secret: "s"}
	f.must(f.store.CreateChannel(f.ctx, ch))
	var ids []uuid.UUID
	for i := 0; i < agents; i++ {
		u := &models.User{Name: fmt.Sprintf("%s agent %d", name, i), Email: fmt.Sprintf("%s-%d@example.com", name, i), Status: status}
		f.must(f.store.CreateUser(f.ctx, u))
		f.must(f.store.AddQueueUser(f.ctx, q.ID, u.ID))
		ids = append(ids, u.ID)
	}
	return ch, ids
}

func ingest(conv string, ch *models.Channel) models.IngestInput {
	return models.IngestInput{ChatID: uuid.New(), OpenChat: true, WorkflowID: "chat/" + conv, ChannelID: ch.ID,
		Message: domain.InboundMessage{ConversationID: conv, ExternalID: conv + "-1", SenderID: "cust-" + conv, Text: "hi"}}
}

// A change that lets a chat be offered wakes the dispatcher in its own
// transaction: with no safety pass at all, a new chat and an agent turning
// Active are each offered at once.
func TestRoutingIsWokenByTheChangesTransaction(t *testing.T) {
	f := newRouting(t, time.Hour)
	ch, agents := f.queue("support", 1, domain.AgentActive)
	_, away := f.queue("night", 1, domain.AgentInactive)
	nightCh := f.channelOf("night")
	f.run()

	first := ingest("a", ch)
	_, err := f.svc.Chats.Ingest(f.ctx, first)
	f.must(err)
	testenv.Eventually(t, 10*time.Second, "the new chat is offered", func() bool { return f.runtime.offers()[first.ChatID] == agents[0] })

	waiting := ingest("b", nightCh)
	_, err = f.svc.Chats.Ingest(f.ctx, waiting)
	f.must(err)
	f.must(f.svc.Agents.SetStatus(f.ctx, away[0], domain.AgentActive))
	testenv.Eventually(t, 10*time.Second, "the chat is offered when its agent turns Active", func() bool {
		return f.runtime.offers()[waiting.ChatID] == away[0]
	})
}

func (f *routingFixture) channelOf(name string) *models.Channel {
	chs, err := f.store.ListChannels(f.ctx)
	f.must(err)
	for i := range chs {
		if chs[i].Name == name {
			return &chs[i]
		}
	}
	f.t.Fatalf("no channel %s", name)
	return nil
}

// No chat depends on a wake-up: a chat that waits without one is offered by
// the safety pass, and an offer whose notification failed is told again.
func TestRoutingSafetyPassCatchesWhatNoWakeupSaid(t *testing.T) {
	f := newRouting(t, 200*time.Millisecond)
	ch, agents := f.queue("support", 2, domain.AgentActive)
	f.runtime.failures = 1
	f.run()

	// Stored by the store itself, which wakes nobody.
	chat := ingest("quiet", ch)
	_, err := f.store.Ingest(f.ctx, chat)
	f.must(err)
	// The workflow is told first and the row marked after, so wait for both.
	testenv.Eventually(t, 10*time.Second, "the chat is offered, its workflow told and the offer recorded as told, despite one failed notification", func() bool {
		if _, ok := f.runtime.offers()[chat.ChatID]; !ok {
			return false
		}
		var notified bool
		f.must(f.store.Raw(f.ctx, &notified, `SELECT offer_notified FROM chats WHERE id = ?`, chat.ChatID))
		return notified
	})
	if f.runtime.failures != 0 {
		t.Fatal("the notification never failed: the test did not exercise a retry")
	}
	_ = agents
}

// One queue's backlog never hides another queue's chats: with 600 chats
// waiting in a queue whose agents are all away, a new chat of a queue with a
// free agent is offered by the very next pass.
func TestRoutingServesEachQueueFirstComeFirstServed(t *testing.T) {
	f := newRouting(t, time.Hour)
	_, err := f.svc.Settings.Set(f.ctx, models.SettingSimultaneousChats, "1")
	f.must(err)
	night, _ := f.queue("night", 2, domain.AgentInactive)
	day, agents := f.queue("day", 1, domain.AgentActive)
	f.must(f.store.Raw(f.ctx, new(int), `WITH c AS (
			INSERT INTO contacts (id, channel_id, external_id, name)
			SELECT gen_random_uuid(), ?, 'night-' || i, 'Night ' || i FROM generate_series(1, 600) i RETURNING id, external_id)
		INSERT INTO chats (id, channel_id, queue_id, contact_id, conversation_id, workflow_id, status, waiting_since)
		SELECT gen_random_uuid(), ?, ?, c.id, c.external_id, 'chat/' || c.external_id, 'waiting', now() - interval '1 hour'
		FROM c RETURNING 1`, night.ID, night.ID, night.QueueID))
	chat := ingest("day-1", day)
	_, err = f.store.Ingest(f.ctx, chat)
	f.must(err)
	res, err := f.svc.Routing.Pass(f.ctx)
	f.must(err)
	if got := f.runtime.offers(); res.Offers != 1 || got[chat.ChatID] != agents[0] {
		t.Fatalf("pass offered %d chats (%v); want the day chat to the day agent", res.Offers, got)
	}
	// Within a queue, the oldest chat goes first.
	older := ingest("day-2", day)
	_, err = f.store.Ingest(f.ctx, older)
	f.must(err)
	f.must(f.store.Raw(f.ctx, new(int), `UPDATE chats SET waiting_since = now() - interval '2 hours' WHERE id = ? RETURNING 1`, older.ChatID))
	newer := ingest("day-3", day)
	_, err = f.store.Ingest(f.ctx, newer)
	f.must(err)
	f.must(f.store.CloseChat(f.ctx, chat.ChatID, domain.CloseByAgent))
	_, err = f.svc.Routing.Pass(f.ctx)
	f.must(err)
	if got := f.runtime.offers(); got[older.ChatID] != agents[0] || got[newer.ChatID] != uuid.Nil {
		t.Fatalf("freed capacity went to %v; want the older chat first", got)
	}
}

// A burst of changes (200 agents turning Active at once, each with two chats
// waiting) wakes routing only through the changes' transactions, and every
// chat is offered without a single failed wake-up.
func TestRoutingTakesABurstOfWakeups(t *testing.T) {
	f := newRouting(t, time.Hour)
	const agents, perAgent = 200, 2
	_, err := f.svc.Settings.Set(f.ctx, models.SettingSimultaneousChats, fmt.Sprint(perAgent))
	f.must(err)
	ch, ids := f.queue("burst", agents, domain.AgentInactive)
	for i := 0; i < agents*perAgent; i++ {
		_, err := f.svc.Chats.Ingest(f.ctx, ingest(fmt.Sprintf("burst-%d", i), ch))
		f.must(err)
	}
	f.run()
	var wg sync.WaitGroup
	errs := make(chan error, agents)
	for _, id := range ids {
		wg.Add(1)
		go func(id uuid.UUID) {
			defer wg.Done()
			errs <- f.svc.Agents.SetStatus(f.ctx, id, domain.AgentActive)
		}(id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.must(err)
	}
	testenv.Eventually(t, 60*time.Second, "every waiting chat is offered", func() bool { return len(f.runtime.offers()) == agents*perAgent })
	load := map[uuid.UUID]int{}
	for _, a := range f.runtime.offers() {
		load[a]++
	}
	for a, n := range load {
		if n > perAgent {
			t.Fatalf("agent %s was offered %d chats, over SimultaneousChats %d", a, n, perAgent)
		}
	}
}
