package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeGraph speaks the Graph API's JSON for one Page and records what it receives.
type fakeGraph struct {
	srv    *httptest.Server
	pageID string
	token  string

	mu         sync.Mutex
	subscribed int
	sends      []fbSend
	passes     []map[string]any
	failSend   []fbError
	failText   []fbError // refusals for text sends only (a caption after its file)
	profiles   map[string]map[string]any
	files      map[string]fbFile
	nextID     int
}

type fbSend struct {
	Recipient, Text, MessagingType, AttachmentType, FileName string
	File                                                     []byte
}

type fbError struct {
	Status, Code, Subcode int
	Message               string
}

type fbFile struct {
	MediaType string
	Content   []byte
}

const (
	fbPageID    = "100200300400"
	fbPageToken = "EAAGfakePageAccessTokenForTests0123456789"
	fbAppSecret = "fake-app-secret-0123456789abcdef"
	fbVerify    = "verify-me-please"
	fbOurApp    = "555000111"
	fbBotApp    = "777000222"
)

func newFakeGraph(t *testing.T) *fakeGraph {
	f := &fakeGraph{pageID: fbPageID, token: fbPageToken, profiles: map[string]map[string]any{}, files: map[string]fbFile{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGraph) url() string { return f.srv.URL + "/v21.0" }

func (f *fakeGraph) refuse(w http.ResponseWriter, e fbError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": e.Message, "type": "OAuthException",
		"code": e.Code, "error_subcode": e.Subcode, "fbtrace_id": "AbCdEf"}})
}

func (f *fakeGraph) ok(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		file, ok := f.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", file.MediaType)
		_, _ = w.Write(file.Content)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/v21.0")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("access_token") != f.token {
		f.refuse(w, fbError{Status: 400, Code: 190, Message: "Invalid OAuth access token - Cannot parse access token"})
		return
	}
	switch {
	case r.Method == "GET" && path == "/me":
		f.ok(w, map[string]string{"id": f.pageID, "name": "Omni Shop"})
	case path == "/"+f.pageID+"/subscribed_apps":
		if r.Method == "POST" {
			f.subscribed++
		} else {
			f.subscribed--
		}
		f.ok(w, map[string]bool{"success": true})
	case r.Method == "POST" && path == "/"+f.pageID+"/messages":
		if len(f.failSend) > 0 {
			e := f.failSend[0]
			f.failSend = f.failSend[1:]
			f.refuse(w, e)
			return
		}
		var s fbSend
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				f.refuse(w, fbError{Status: 400, Code: 100, Message: "Invalid parameter"})
				return
			}
			var rcpt map[string]string
			_ = json.Unmarshal([]byte(r.FormValue("recipient")), &rcpt)
			var msg struct {
				Attachment struct{ Type string } `json:"attachment"`
			}
			_ = json.Unmarshal([]byte(r.FormValue("message")), &msg)
			file, hdr, err := r.FormFile("filedata")
			if err != nil {
				f.refuse(w, fbError{Status: 400, Code: 100, Message: "filedata is required"})
				return
			}
			s.File, _ = io.ReadAll(file)
			s.Recipient, s.MessagingType, s.AttachmentType, s.FileName = rcpt["id"], r.FormValue("messaging_type"), msg.Attachment.Type, hdr.Filename
		} else {
			if len(f.failText) > 0 {
				e := f.failText[0]
				f.failText = f.failText[1:]
				f.refuse(w, e)
				return
			}
			var body struct {
				Recipient     map[string]string `json:"recipient"`
				MessagingType string            `json:"messaging_type"`
				Message       map[string]string `json:"message"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			s.Recipient, s.MessagingType, s.Text = body.Recipient["id"], body.MessagingType, body.Message["text"]
		}
		if s.Recipient == "" || s.MessagingType != "RESPONSE" {
			f.refuse(w, fbError{Status: 400, Code: 100, Message: "(#100) recipient and messaging_type RESPONSE are required"})
			return
		}
		f.sends = append(f.sends, s)
		f.nextID++
		f.ok(w, map[string]string{"recipient_id": s.Recipient, "message_id": "m_out_" + strings.Repeat("x", f.nextID)})
	case r.Method == "POST" && path == "/"+f.pageID+"/pass_thread_control":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.passes = append(f.passes, body)
		f.ok(w, map[string]bool{"success": true})
	case r.Method == "GET":
		psid := strings.TrimPrefix(path, "/")
		prof, ok := f.profiles[psid]
		if !ok {
			f.refuse(w, fbError{Status: 400, Code: 100, Subcode: 2018218, Message: "(#100) No profile available for this user."})
			return
		}
		f.ok(w, prof)
	default:
		f.refuse(w, fbError{Status: 400, Code: 100, Message: "Unsupported request"})
	}
}

func (f *fakeGraph) snapshot() (sends []fbSend, passes []map[string]any, subscribed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fbSend(nil), f.sends...), append([]map[string]any(nil), f.passes...), f.subscribed
}
