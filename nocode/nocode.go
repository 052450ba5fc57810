// Package nocode is the language of no-code chat actions: a definition is a
// short list of steps from a fixed catalogue, whose text fields are Go
// text/template templates over the chat's context and the outputs of
// earlier steps. One generic workflow (workflows.NoCodeAction) runs any
// definition; this package validates definitions, renders templates and
// makes HTTP calls that cannot reach omnichat's own network.
package nocode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Step types.
const (
	StepCreateCase      = "create_case"
	StepSendMessage     = "send_message"
	StepNote            = "note"
	StepHTTP            = "http"
	StepSetContactField = "set_contact_field"
	StepWait            = "wait"
)

// MaxSteps bounds a definition.
const MaxSteps = 20

// MaxWait bounds a wait step.
const MaxWait = 7 * 24 * time.Hour

// Redacted stands for a secret in what the API answers; sent back unchanged
// it keeps the stored secret.
const Redacted = "********"

// Definition is a no-code action.
type Definition struct {
	Steps []Step `json:"steps"`
}

// Step is one step; which fields it uses depends on its type.
type Step struct {
	Type string `json:"type"`
	// ID names the step's outputs for later steps: {{.Outputs.<id>.<field>}}.
	ID string `json:"id,omitempty"`
	// Text: send_message and note.
	Text string `json:"text,omitempty"`
	// Subject: create_case (empty: the chat's first inbound message).
	Subject string `json:"subject,omitempty"`
	// HTTP call.
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
	// Keep lists fields of the JSON answer (dot paths) kept as outputs.
	Keep []string `json:"keep,omitempty"`
	// Field and Value: set_contact_field.
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
	// Duration: wait, a Go duration such as 30s or 2h.
	Duration string `json:"duration,omitempty"`
}

// FieldError names what is wrong with a definition: nocode.steps[i].field.
type FieldError struct {
	Field   string
	Message string
}

// Errors is every problem of a definition.
type Errors []FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + " " + f.Message
	}
	return "invalid no-code definition: " + strings.Join(parts, "; ")
}

var (
	idPattern    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	fieldPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	headerName   = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	keepPattern  = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)
	methods      = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}
)

// Parse decodes and validates a definition; problems come back as Errors.
func Parse(raw []byte) (*Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, Errors{{Field: "nocode", Message: "is not a valid definition: " + err.Error()}}
	}
	if errs := d.Validate(); len(errs) > 0 {
		return nil, errs
	}
	return &d, nil
}

// Validate checks every step: known type, required fields, templates that
// parse, durations, URLs and header names.
func (d *Definition) Validate() Errors {
	var errs Errors
	add := func(i int, field, msg string) {
		errs = append(errs, FieldError{Field: fmt.Sprintf("nocode.steps[%d].%s", i, field), Message: msg})
	}
	if len(d.Steps) == 0 || len(d.Steps) > MaxSteps {
		return Errors{{Field: "nocode.steps", Message: fmt.Sprintf("must have 1 to %d steps", MaxSteps)}}
	}
	ids := map[string]bool{}
	tmpl := func(i int, field, text string, required bool) {
		if required && strings.TrimSpace(text) == "" {
			add(i, field, "is required")
			return
		}
		if _, err := parseTemplate(text); err != nil {
			add(i, field, "is not a valid template: "+err.Error())
		}
	}
	for i, s := range d.Steps {
		if s.ID != "" {
			if !idPattern.MatchString(s.ID) {
				add(i, "id", "must be lower-case letters, digits and _ (at most 32), starting with a letter")
			} else if ids[s.ID] {
				add(i, "id", "is used by an earlier step")
			}
			ids[s.ID] = true
		}
		switch s.Type {
		case StepCreateCase:
			tmpl(i, "subject", s.Subject, false)
		case StepSendMessage, StepNote:
			tmpl(i, "text", s.Text, true)
		case StepHTTP:
			if !methods[s.Method] {
				add(i, "method", "must be one of GET, POST, PUT, PATCH, DELETE")
			}
			tmpl(i, "url", s.URL, true)
			if !strings.Contains(s.URL, "{{") {
				if err := checkURL(s.URL); err != nil {
					add(i, "url", err.Error())
				}
			}
			for k, v := range s.Headers {
				if !headerName.MatchString(k) {
					add(i, "headers."+k, "is not a valid header name")
				}
				tmpl(i, "headers."+k, v, false)
			}
			if err := walkStrings(s.Body, func(v string) error { _, err := parseTemplate(v); return err }); err != nil {
				add(i, "body", "has an invalid template: "+err.Error())
			}
			for _, k := range s.Keep {
				if !keepPattern.MatchString(k) {
					add(i, "keep", fmt.Sprintf("%q is not a dot path of the JSON answer", k))
				}
			}
		case StepSetContactField:
			if !fieldPattern.MatchString(s.Field) {
				add(i, "field", "must be lower-case letters, digits and _ (at most 64), starting with a letter")
			}
			tmpl(i, "value", s.Value, true)
		case StepWait:
			dur, err := time.ParseDuration(s.Duration)
			if err != nil || dur <= 0 || dur > MaxWait {
				add(i, "duration", "must be a Go duration such as 30s or 2h, at most 168h")
			}
		case "":
			add(i, "type", "is required")
		default:
			add(i, "type", "must be one of create_case, send_message, note, http, set_contact_field, wait")
		}
	}
	return errs
}

// checkURL refuses what an HTTP step may never call, whatever the allow-list.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; use an Authorization header")
	}
	return nil
}

func walkStrings(v any, f func(string) error) error {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		for _, e := range x {
			if err := walkStrings(e, f); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := walkStrings(e, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// SecretHeader reports whether a header's value is a secret: write-only in
// the API (answered as Redacted, kept when an edit sends Redacted back).
// Besides Authorization, Proxy-Authorization and Cookie, any header whose
// name mentions a key, token, secret, auth, signature or password is one.
func SecretHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, w := range []string{"key", "token", "secret", "auth", "signature", "password"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact replaces the secret headers (SecretHeader) of a definition's steps by Redacted.
func Redact(raw []byte) []byte {
	var d Definition
	if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
		return raw
	}
	for i := range d.Steps {
		for k := range d.Steps[i].Headers {
			if SecretHeader(k) {
				d.Steps[i].Headers[k] = Redacted
			}
		}
	}
	out, _ := json.Marshal(d)
	return out
}

// KeepSecrets puts the stored secret header values back where an edited
// definition sends Redacted for the same step index.
func KeepSecrets(edited *Definition, stored []byte) {
	var old Definition
	if len(stored) == 0 || json.Unmarshal(stored, &old) != nil {
		return
	}
	for i := range edited.Steps {
		for k, v := range edited.Steps[i].Headers {
			if v != Redacted || !SecretHeader(k) || i >= len(old.Steps) {
				continue
			}
			for ok, ov := range old.Steps[i].Headers {
				if strings.EqualFold(ok, k) {
					edited.Steps[i].Headers[k] = ov
				}
			}
		}
	}
}

// Context is what templates see.
type Context struct {
	Chat        ChatContext
	Contact     ContactContext
	Queue       QueueContext
	Agent       AgentContext
	LastInbound string
	// Outputs of earlier steps by step ID (and by "step<i>").
	Outputs map[string]map[string]string
}

// ChatContext is the chat in templates.
type ChatContext struct{ ID, Status, ChannelID string }

// ContactContext is the customer in templates.
type ContactContext struct {
	ID, Name string
	Fields   map[string]string
}

// QueueContext is the queue in templates.
type QueueContext struct{ ID, Name string }

// AgentContext is the agent who ran the action.
type AgentContext struct{ ID, Name string }

var funcs = template.FuncMap{
	// json quotes a value for a JSON document.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// default gives def when v is empty.
	"default": func(def string, v any) string {
		if s := fmt.Sprint(v); v != nil && s != "" && s != "<no value>" {
			return s
		}
		return def
	},
}

func parseTemplate(text string) (*template.Template, error) {
	return template.New("").Funcs(funcs).Option("missingkey=zero").Parse(text)
}

// Render fills a template with the context.
func Render(text string, c *Context) (string, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, c); err != nil {
		return "", err
	}
	return strings.ReplaceAll(b.String(), "<no value>", ""), nil
}

// RenderURL fills an HTTP step's URL template. Every value it inserts is
// escaped for where it lands: before the first "?" or "#" of the template's
// text as a path segment (url.PathEscape: "/", "?", "#", spaces and the like
// become %XX), after it as a query value (url.QueryEscape: "&", "=", "#"
// too). A value can thus add no path segment, query parameter or fragment;
// the scheme, host and path structure come from the template's own text.
func RenderURL(text string, c *Context) (string, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return "", err
	}
	t.Funcs(template.FuncMap{escapePath: urlEscaper(url.PathEscape), escapeQuery: urlEscaper(url.QueryEscape)})
	inQuery := false
	escapeActions(t.Tree.Root, &inQuery)
	var b strings.Builder
	if err := t.Execute(&b, c); err != nil {
		return "", err
	}
	return b.String(), nil
}

const (
	escapePath  = "omnichatEscapePathSegment"
	escapeQuery = "omnichatEscapeQueryValue"
)

// urlEscaper prints its arguments as text/template would, then escapes them;
// a missing value is empty, not "<no value>".
func urlEscaper(escape func(string) string) func(...any) string {
	return func(args ...any) string {
		s := fmt.Sprint(args...)
		if len(args) == 1 && args[0] == nil || s == "<no value>" {
			return ""
		}
		return escape(s)
	}
}

// escapeActions ends every printing action with the escaper for its place in
// the URL, in the order the text is written, as html/template does for HTML.
func escapeActions(n parse.Node, inQuery *bool) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			escapeActions(c, inQuery)
		}
	case *parse.TextNode:
		if bytes.ContainsAny(x.Text, "?#") {
			*inQuery = true
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) > 0 { // an assignment prints nothing
			return
		}
		name := escapePath
		if *inQuery {
			name = escapeQuery
		}
		x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos,
			Args: []parse.Node{parse.NewIdentifier(name).SetPos(x.Pos)}})
	case *parse.IfNode:
		escapeActions(x.List, inQuery)
		escapeActions(x.ElseList, inQuery)
	case *parse.RangeNode:
		escapeActions(x.List, inQuery)
		escapeActions(x.ElseList, inQuery)
	case *parse.WithNode:
		escapeActions(x.List, inQuery)
		escapeActions(x.ElseList, inQuery)
	}
}

// RenderBody fills every string of a JSON body.
func RenderBody(v any, c *Context) (any, error) {
	switch x := v.(type) {
	case string:
		return Render(x, c)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := RenderBody(e, c)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := RenderBody(e, c)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// Pick reads a dot path of a decoded JSON document as text.
func Pick(doc any, path string) (string, bool) {
	cur := doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = m[p]; !ok {
			return "", false
		}
	}
	switch x := cur.(type) {
	case string:
		return x, true
	case nil:
		return "", true
	default:
		b, _ := json.Marshal(x)
		return string(b), true
	}
}
