package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTelegram speaks the Bot API's JSON for one bot token and records the
// calls it receives. Errors queued in failSend answer the next sends.
type fakeTelegram struct {
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	calls     []string
	webhooks  []map[string]any
	deletes   int
	sends     []tgSend
	failSend  []tgError
	nextID    int64
	files     map[string]tgFile
	photos    map[string][]map[string]any // user id -> sizes of the first photo
	fileGets  []string
	downloads int
	answered  []string // callback query IDs answered
}

type tgSend struct {
	Method, ChatID, Text, FileName string
	File                           []byte
	At                             time.Time
}

type tgError struct {
	Code        int
	Description string
	RetryAfter  int
}

type tgFile struct {
	Path, MediaType string
	Content         []byte
}

const tgToken = "123456789:AAHfakeTokenForOmnichatTests_0123456"

func newFakeTelegram(t *testing.T) *fakeTelegram {
	f := &fakeTelegram{token: tgToken, files: map[string]tgFile{}, photos: map[string][]map[string]any{}, nextID: 100}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTelegram) reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (f *fakeTelegram) refuse(w http.ResponseWriter, e tgError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Code)
	body := map[string]any{"ok": false, "error_code": e.Code, "description": e.Description}
	if e.RetryAfter > 0 {
		body["parameters"] = map[string]any{"retry_after": e.RetryAfter}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeTelegram) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"+f.token+"/"); ok {
		for _, file := range f.files {
			if file.Path == rest {
				f.downloads++
				w.Header().Set("Content-Type", file.MediaType)
				_, _ = w.Write(file.Content)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+f.token+"/")
	if !ok {
		f.refuse(w, tgError{Code: 401, Description: "Unauthorized"})
		return
	}
	f.calls = append(f.calls, method)
	var p map[string]any
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.NewDecoder(r.Body).Decode(&p)
	}
	switch method {
	case "getMe":
		f.reply(w, map[string]any{"id": 123456789, "is_bot": true, "first_name": "Omni", "username": "omni_test_bot"})
	case "setWebhook":
		f.webhooks = append(f.webhooks, p)
		f.reply(w, true)
	case "deleteWebhook":
		f.deletes++
		f.reply(w, true)
	case "sendMessage", "sendDocument", "sendPhoto":
		if len(f.failSend) > 0 {
			e := f.failSend[0]
			f.failSend = f.failSend[1:]
			f.refuse(w, e)
			return
		}
		s := tgSend{Method: method, At: time.Now()}
		if method == "sendMessage" {
			s.ChatID, s.Text = toString(p["chat_id"]), toString(p["text"])
		} else {
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				f.refuse(w, tgError{Code: 400, Description: "Bad Request: " + err.Error()})
				return
			}
			s.ChatID, s.Text = r.FormValue("chat_id"), r.FormValue("caption")
			field := "document"
			if method == "sendPhoto" {
				field = "photo"
			}
			file, hdr, err := r.FormFile(field)
			if err != nil {
				f.refuse(w, tgError{Code: 400, Description: "Bad Request: there is no " + field + " in the request"})
				return
			}
			s.File, _ = io.ReadAll(file)
			s.FileName = hdr.Filename
		}
		f.sends = append(f.sends, s)
		f.nextID++
		chatID, _ := strconv.ParseInt(s.ChatID, 10, 64)
		f.reply(w, map[string]any{"message_id": f.nextID, "date": time.Now().Unix(), "chat": map[string]any{"id": chatID, "type": "private"}, "text": s.Text})
	case "answerCallbackQuery":
		f.answered = append(f.answered, toString(p["callback_query_id"]))
		f.reply(w, true)
	case "getUserProfilePhotos":
		sizes := f.photos[toString(p["user_id"])]
		photos := [][]map[string]any{}
		if sizes != nil {
			photos = append(photos, sizes)
		}
		f.reply(w, map[string]any{"total_count": len(photos), "photos": photos})
	case "getFile":
		id := toString(p["file_id"])
		f.fileGets = append(f.fileGets, id)
		file, ok := f.files[id]
		if !ok {
			f.refuse(w, tgError{Code: 400, Description: "Bad Request: invalid file_id"})
			return
		}
		f.reply(w, map[string]any{"file_id": id, "file_size": len(file.Content), "file_path": file.Path})
	default:
		f.refuse(w, tgError{Code: 404, Description: "Not Found: method not found"})
	}
}

// toString reads a Bot API parameter sent as a string or as a JSON number.
func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

func (f *fakeTelegram) snapshot() fakeTelegram {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeTelegram{calls: append([]string(nil), f.calls...), webhooks: append([]map[string]any(nil), f.webhooks...),
		deletes: f.deletes, sends: append([]tgSend(nil), f.sends...), fileGets: append([]string(nil), f.fileGets...), downloads: f.downloads,
		answered: append([]string(nil), f.answered...)}
}

func (f *fakeTelegram) failNextSend(e ...tgError) {
	f.mu.Lock()
	f.failSend = append(f.failSend, e...)
	f.mu.Unlock()
}

func (f *fakeTelegram) addFile(id, path, mediaType string, content []byte) {
	f.mu.Lock()
	f.files[id] = tgFile{Path: path, MediaType: mediaType, Content: content}
	f.mu.Unlock()
}
