package e2e

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/testenv"
)

// artifacts is where browser tests leave their screenshots (gitignored).
const artifacts = "../test-artifacts/panel"

// chromium finds a Chromium binary: $OMNICHAT_CHROMIUM, then the usual names.
func chromium() string {
	if p := os.Getenv("OMNICHAT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts a headless Chromium at 1280×800 for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium()
	if path == "" {
		t.Skip("no Chromium found (install the chromium package, or set OMNICHAT_CHROMIUM): browser tests skipped")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser: it gets no timeout, which would stop it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx
}

// run runs browser actions, bounded so a stuck page fails the test instead of hanging it.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, within time.Duration, what, expr string) {
	t.Helper()
	testenv.Eventually(t, within, what, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(cctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(cctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// messagesShow is a JS expression: the open conversation shows every text.
func messagesShow(texts ...string) string {
	var conds []string
	for _, s := range texts {
		conds = append(conds, fmt.Sprintf("document.getElementById('messages').textContent.includes(%q)", s))
	}
	return strings.Join(conds, " && ")
}

// An agent works a chat from offer to close in the panel, in Chromium, and
// after the stream is cut and restored sees everything that happened
// meanwhile without reloading.
func TestPanelFromOfferToCloseAndResumeAfterCut(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	e.must(204, e.Do("PUT", "/api/v1/admin/users/"+alice.ID+"/password", e.admin, map[string]any{"password": "alice-password"}), "set password")
	q := e.queue("Support", "available_agent", 0, alice)
	ch := e.channel(q)

	// The browser reaches omnichat through a proxy the test can cut.
	u, _ := url.Parse(e.URL)
	proxy := testenv.StartProxy(t, u.Host)
	site := "http://" + proxy.Addr()
	ctx := browser(t)

	run(t, ctx, "open the sign-in page", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-email")))
	waitJS(t, ctx, 5*time.Second, "watch for CSP violations",
		`(window.cspViolations = [], document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)), true)`)
	run(t, ctx, "fill in the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#signin-email"), "alice@example.com"),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), "alice-password"))
	screenshot(t, ctx, "1-sign-in")
	run(t, ctx, "sign in", chromedp.Click(chromedp.CSS("#signin-submit")), chromedp.WaitVisible(chromedp.CSS("#status-toggle")))
	waitJS(t, ctx, 20*time.Second, "the stream is open", `document.body.dataset.stream === 'open'`)

	run(t, ctx, "go Active", chromedp.Click(chromedp.CSS("#status-toggle")))
	waitJS(t, ctx, 10*time.Second, "the switch shows Active", `document.getElementById('status-toggle').getAttribute('aria-pressed') === 'true'`)
	testenv.Eventually(t, 10*time.Second, "alice is active", func() bool {
		return e.count(`SELECT count(*) FROM users WHERE id = ? AND status = 'active'`, alice.ID) == 1
	})

	// A customer writes: the offer appears without a reload.
	e.must(200, e.inbound(ch, "c1", "m1", "Hello, my order has not arrived"), "inbound m1")
	waitJS(t, ctx, 30*time.Second, "the offer appears", `document.querySelector('#list-offered [data-chat-id]') !== null`)
	waitJS(t, ctx, 10*time.Second, "the offer shows the contact, the message and the time left",
		`(() => { const li = document.querySelector('#list-offered [data-chat-id]');
		  return li.textContent.includes('Customer c1') && li.textContent.includes('my order') && li.querySelector('.countdown') !== null; })()`)
	screenshot(t, ctx, "2-offer")

	run(t, ctx, "accept", chromedp.Click(chromedp.CSS("#list-offered .accept")))
	waitJS(t, ctx, 20*time.Second, "the chat is in progress", `document.querySelector('#list-inprogress [data-chat-id]') !== null`)
	waitJS(t, ctx, 10*time.Second, "the conversation shows the message", messagesShow("Hello, my order has not arrived"))

	run(t, ctx, "reply",
		chromedp.WaitVisible(chromedp.CSS("#reply-text")),
		chromedp.SendKeys(chromedp.CSS("#reply-text"), "Sorry about that, let me check."),
		chromedp.Click(chromedp.CSS("#reply-send")))
	testenv.Eventually(t, 30*time.Second, "the channel's endpoint receives the reply", func() bool {
		for _, r := range e.out.got() {
			if r.Text == "Sorry about that, let me check." {
				return true
			}
		}
		return false
	})
	waitJS(t, ctx, 20*time.Second, "the reply shows as sent", `document.querySelector('#messages [data-status="sent"]') !== null`)

	// A picture through the reply box's file input: sent to the channel, shown inline.
	picture := filepath.Join(t.TempDir(), "parcel.png")
	writePNG(t, picture)
	run(t, ctx, "send a picture",
		chromedp.SetUploadFiles(chromedp.CSS("#reply-file"), []string{picture}),
		chromedp.Click(chromedp.CSS("#reply-send")))
	testenv.Eventually(t, 30*time.Second, "the channel's endpoint receives the picture", func() bool {
		for _, r := range e.out.got() {
			if r.Attachment != nil && r.Attachment.Name == "parcel.png" && r.Attachment.MediaType == "image/png" {
				return true
			}
		}
		return false
	})
	waitJS(t, ctx, 20*time.Second, "the picture shows inline",
		`(() => { const img = document.querySelector('#messages img[alt="parcel.png"]'); return img !== null && img.complete && img.naturalWidth === 64; })()`)

	e.must(200, e.inbound(ch, "c1", "m2", "Order number 4711"), "inbound m2")
	waitJS(t, ctx, 20*time.Second, "the customer's next message appears live", messagesShow("Order number 4711"))
	screenshot(t, ctx, "3-conversation")

	// Cut the stream; while it is down the customer writes twice and a new customer arrives.
	waitJS(t, ctx, 5*time.Second, "mark the page", `window.omnichatNoReload = true`)
	proxy.Down()
	waitJS(t, ctx, 20*time.Second, "the reconnect banner shows", `!document.getElementById('banner').hidden`)
	e.must(200, e.inbound(ch, "c1", "m3", "Are you still there?"), "inbound m3")
	e.must(200, e.inbound(ch, "c1", "m4", "It was a blue parcel"), "inbound m4")
	e.must(200, e.inbound(ch, "c2", "n1", "Hi, a new question"), "inbound n1")
	testenv.Eventually(t, 30*time.Second, "the missed changes are stored", func() bool {
		return e.count(`SELECT count(*) FROM messages WHERE text IN ('Are you still there?', 'It was a blue parcel')`) == 2 &&
			e.count(`SELECT count(*) FROM chats WHERE agent_id = ? AND status = 'offered'`, alice.ID) == 1
	})
	screenshot(t, ctx, "4-reconnecting")
	proxy.Up()

	waitJS(t, ctx, 30*time.Second, "the missed messages appear", messagesShow("Are you still there?", "It was a blue parcel"))
	waitJS(t, ctx, 20*time.Second, "the missed offer appears",
		`[...document.querySelectorAll('#list-offered [data-chat-id]')].some(li => li.textContent.includes('Customer c2'))`)
	waitJS(t, ctx, 10*time.Second, "the banner is gone", `document.getElementById('banner').hidden`)
	waitJS(t, ctx, time.Second, "the page was not reloaded", `window.omnichatNoReload === true`)

	run(t, ctx, "close the chat", chromedp.Click(chromedp.CSS("#conv-close")))
	waitJS(t, ctx, 20*time.Second, "the chat is recently closed",
		`[...document.querySelectorAll('#list-closed [data-chat-id]')].some(li => li.textContent.includes('Customer c1'))`)
	testenv.Eventually(t, 20*time.Second, "the chat is closed", func() bool {
		return e.count(`SELECT count(*) FROM chats c JOIN contacts ct ON ct.id = c.contact_id WHERE ct.name = 'Customer c1' AND c.status = 'closed'`) == 1
	})
	screenshot(t, ctx, "5-closed")

	// The customer who arrived during the cut: accept, then transfer to Bob.
	run(t, ctx, "accept the second chat", chromedp.Click(chromedp.CSS("#list-offered .accept")))
	waitJS(t, ctx, 20*time.Second, "the second chat is open", `document.getElementById('conv-title').textContent === 'Customer c2' && !document.getElementById('conv-transfer').hidden`)
	bob := e.agent("bob")
	e.must(204, e.Do("POST", "/api/v1/admin/queues/"+q+"/agents", e.admin, map[string]any{"user_id": bob.ID}), "add bob")
	e.activate(bob)
	run(t, ctx, "transfer to Bob",
		chromedp.Click(chromedp.CSS("#conv-transfer")),
		chromedp.WaitVisible(chromedp.CSS("#transfer-agent-id")),
		chromedp.SendKeys(chromedp.CSS("#transfer-agent-id"), bob.ID),
		chromedp.Click(chromedp.CSS("#transfer-go")))
	waitJS(t, ctx, 20*time.Second, "the chat left alice's lists",
		`![...document.querySelectorAll('#lists [data-chat-id]')].some(li => li.textContent.includes('Customer c2'))`)
	testenv.Eventually(t, 20*time.Second, "Bob has the chat", func() bool {
		return e.count(`SELECT count(*) FROM chats c JOIN contacts ct ON ct.id = c.contact_id WHERE ct.name = 'Customer c2' AND c.agent_id = ? AND c.status = 'in_progress'`, bob.ID) == 1
	})

	// An offer left to expire: the panel says so and shows alice Inactive.
	// The offer lasts 15 s: on a loaded machine, with other transactions open
	// in the cluster, the stream may take longer than a few seconds to deliver it.
	e.setting("OmniChatOperatorAcceptChatTimeout", "0.25")
	e.must(200, e.inbound(ch, "c3", "p1", "Anyone there?"), "inbound p1")
	waitJS(t, ctx, 30*time.Second, "the third offer appears",
		`[...document.querySelectorAll('#list-offered [data-chat-id]')].some(li => li.textContent.includes('Customer c3'))`)
	waitJS(t, ctx, 60*time.Second, "the panel says the offer expired and alice is Inactive",
		`document.getElementById('notice').textContent.includes('expired') && document.getElementById('status-toggle').getAttribute('aria-pressed') === 'false'`)
	waitJS(t, ctx, 10*time.Second, "the expired offer left alice's lists",
		`![...document.querySelectorAll('#lists [data-chat-id]')].some(li => li.textContent.includes('Customer c3'))`)
	screenshot(t, ctx, "7-offer-expired")

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v, err := chromedp.Run(cctx, chromedp.Evaluate[[]string](`window.cspViolations`)); err != nil || len(v) > 0 {
		t.Fatalf("Content-Security-Policy violations: %v %v", v, err)
	}

	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	screenshot(t, ctx, "6-phone")
}

// An agent runs the built-in "Create case" action from the panel, with the
// keyboard, and sees the run complete and the chat's "Case CS-… created" note
// appear live, without a reload; one press starts one run.
func TestPanelRunsAnActionAndSeesItsOutcomeLive(t *testing.T) {
	e := newEnv(t)
	alice := e.agent("alice")
	e.must(204, e.Do("PUT", "/api/v1/admin/users/"+alice.ID+"/password", e.admin, map[string]any{"password": "alice-password"}), "set password")
	ch := e.channel(e.queue("Billing", domain.RuleAllAgents, 0, alice))
	e.activate(alice)
	chatID := acceptedChat(e, alice, ch, "act")
	ctx := browser(t)

	run(t, ctx, "sign in",
		chromedp.Navigate(e.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#signin-email")),
		chromedp.SendKeys(chromedp.CSS("#signin-email"), "alice@example.com"),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), "alice-password"),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#status-toggle")))
	waitJS(t, ctx, 5*time.Second, "watch for CSP violations and reloads",
		`(window.cspViolations = [], window.omnichatNoReload = true, document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)), true)`)
	waitJS(t, ctx, 20*time.Second, "the stream is open", `document.body.dataset.stream === 'open'`)
	item := fmt.Sprintf(`#list-inprogress [data-chat-id=%q]`, chatID)
	waitJS(t, ctx, 20*time.Second, "the chat is in progress", fmt.Sprintf(`document.querySelector(%q) !== null`, item))

	// Open the chat and run the action with the keyboard alone.
	run(t, ctx, "open the chat with Enter", chromedp.Focus(chromedp.CSS(item)), chromedp.KeyEvent("\r"))
	button := fmt.Sprintf(`#action-buttons [data-action-id=%q]`, builtinCreateCase)
	waitJS(t, ctx, 20*time.Second, "the chat's actions show", fmt.Sprintf(
		`(() => { const b = document.querySelector(%q); return b !== null && b.textContent === 'Create case' && !document.getElementById('chat-actions').hidden; })()`, button))
	run(t, ctx, "run Create case with Enter", chromedp.Focus(chromedp.CSS(button)), chromedp.KeyEvent("\r"))

	var runs []api.ActionRunDTO
	testenv.Eventually(t, 60*time.Second, "the run is recorded", func() bool {
		runs = e.runs(alice, chatID)
		return len(runs) > 0
	})
	done := e.waitRun(alice, chatID, runs[0].ID.String(), 60*time.Second)
	if done.Status != domain.RunCompleted || done.Result == nil || !strings.HasPrefix(*done.Result, "CS-") {
		t.Fatalf("run: %+v", done)
	}
	number := *done.Result
	waitJS(t, ctx, 30*time.Second, "the run shows completed with the case number", fmt.Sprintf(
		`(() => { const r = document.querySelectorAll('#action-runs [data-run-id]');
		  return r.length === 1 && r[0].dataset.status === 'completed' && r[0].textContent.includes('Create case') && r[0].textContent.includes(%q); })()`, number))
	waitJS(t, ctx, 30*time.Second, "the case note appears in the conversation", messagesShow("Case "+number+" created"))
	waitJS(t, ctx, time.Second, "the page was not reloaded", `window.omnichatNoReload === true`)
	waitJS(t, ctx, time.Second, "focus stayed on the button", fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, button))
	if rs := e.runs(alice, chatID); len(rs) != 1 {
		t.Fatalf("%d runs after one press, want 1", len(rs))
	}
	screenshot(t, ctx, "8-action-run")

	// A press whose answer is lost on the way back: the panel sends the POST
	// again with the same Idempotency-Key, and one more run starts, not two.
	keys := loseFirstAnswer(t, ctx, "*/actions/*/run")
	run(t, ctx, "run Create case again", chromedp.Focus(chromedp.CSS(button)), chromedp.KeyEvent("\r"))
	testenv.Eventually(t, 30*time.Second, "the panel sent the run request again", func() bool { return len(keys()) >= 2 })
	if k := keys(); len(k) != 2 || k[0] == "" || k[0] != k[1] {
		t.Fatalf("Idempotency-Keys of the request and its retry: %q, want one key twice", k)
	}
	waitJS(t, ctx, 60*time.Second, "the panel shows two completed runs", `(() => {
		  const r = [...document.querySelectorAll('#action-runs [data-run-id]')];
		  return r.length === 2 && r.every(x => x.dataset.status === 'completed'); })()`)
	if rs := e.runs(alice, chatID); len(rs) != 2 {
		t.Fatalf("%d runs after two presses (one answer lost), want 2", len(rs))
	}
	waitJS(t, ctx, 30*time.Second, "two case notes in the conversation",
		`[...document.querySelectorAll('#messages .msg.system')].filter(m => /Case CS-\d+ created/.test(m.textContent)).length === 2`)
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	screenshot(t, ctx, "9-action-run-phone")

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v, err := chromedp.Run(cctx, chromedp.Evaluate[[]string](`window.cspViolations`)); err != nil || len(v) > 0 {
		t.Fatalf("Content-Security-Policy violations: %v %v", v, err)
	}
}

// loseFirstAnswer intercepts the page's requests whose URL matches pattern
// once their answer is in: the first answer is dropped (the server did the
// work; the page sees a network error), later ones pass. It returns a func
// that lists the Idempotency-Key of each request seen.
func loseFirstAnswer(t *testing.T, ctx context.Context, pattern string) func() []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ready := make(chan error, 1)
	go func() {
		_, _ = chromedp.Run(lctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			paused := cdp.Events(ctx, tg, fetch.RequestPaused) // subscribed before requests pause
			_, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern, RequestStage: fetch.RequestStageResponse}}})
			ready <- err
			if err != nil {
				return chromedp.Void{}, err
			}
			for ev, err := range paused {
				if err != nil {
					return chromedp.Void{}, err
				}
				key := ""
				for k, v := range ev.Request.Headers {
					if strings.EqualFold(k, "Idempotency-Key") {
						key, _ = v.(string)
					}
				}
				mu.Lock()
				keys = append(keys, key)
				first := len(keys) == 1
				mu.Unlock()
				if first {
					_, err = cdp.Call(ctx, tg, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
				} else {
					_, err = cdp.Call(ctx, tg, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				}
				if err != nil {
					return chromedp.Void{}, err
				}
			}
			return chromedp.Void{}, nil
		})
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("intercept %s: %v", pattern, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("intercept %s: Fetch.enable did not answer", pattern)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), keys...)
	}
}

// writePNG writes a 64×48 picture.
func writePNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		for y := 0; y < 48; y++ {
			img.Set(x, y, color.RGBA{R: uint8(40 + x*3), G: uint8(90 + y*2), B: 200, A: 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
