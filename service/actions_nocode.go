package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/nocode"
)

// Definition is the no-code definition a run snapshotted when it started,
// with its secrets: what the run executes, however the action is edited since.
func (a *Actions) Definition(ctx context.Context, runID uuid.UUID) (*nocode.Definition, error) {
	run, err := a.store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	return runDefinition(run)
}

func runDefinition(run *ActionRun) (*nocode.Definition, error) {
	if run.Kind != domain.ActionNoCode {
		return nil, fmt.Errorf("run %s is not a no-code action: %w", run.ID, domain.ErrInvalid)
	}
	var def nocode.Definition
	if err := json.Unmarshal(run.Definition, &def); err != nil {
		return nil, fmt.Errorf("run %s definition: %v: %w", run.ID, err, domain.ErrInvalid)
	}
	return &def, nil
}

// StepOutputs are the outputs of a no-code run's steps so far, by step key.
type StepOutputs = map[string]map[string]string

// RunStep carries out step index of a run's definition with the chat's
// context and the outputs of earlier steps, and returns the step's outputs.
// Each step is idempotent per (run, step): a retried case, message or note
// is made once; an HTTP call carries an Idempotency-Key for its receiver.
func (a *Actions) RunStep(ctx context.Context, runID uuid.UUID, index int, outputs StepOutputs) (map[string]string, error) {
	run, err := a.store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	def, err := runDefinition(run)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= len(def.Steps) {
		return nil, fmt.Errorf("step %d of %d: %w", index, len(def.Steps), domain.ErrInvalid)
	}
	step := def.Steps[index]
	tc, err := a.templateContext(ctx, run, outputs)
	if err != nil {
		return nil, err
	}
	render := func(field, text string) (string, error) {
		out, err := nocode.Render(text, tc)
		if err != nil {
			return "", fmt.Errorf("%s: %v: %w", field, err, domain.ErrInvalid)
		}
		return out, nil
	}
	key := fmt.Sprintf("action-run/%s/%d", run.ID, index)
	switch step.Type {
	case nocode.StepCreateCase:
		subject, err := render("subject", step.Subject)
		if err != nil {
			return nil, err
		}
		cs, err := a.cases.createForStep(ctx, run, index, subject)
		if err != nil {
			return nil, err
		}
		return map[string]string{"number": cs.Number, "id": cs.ID.String()}, nil
	case nocode.StepSendMessage:
		text, err := render("text", step.Text)
		if err != nil {
			return nil, err
		}
		chat, err := a.store.GetChat(ctx, run.ChatID)
		if err != nil {
			return nil, err
		}
		id, err := a.chats.runtime.Send(ctx, chat.WorkflowID, SendCommand{AgentID: run.AgentID.String(), Text: text, IdempotencyKey: key})
		if err != nil {
			return nil, err
		}
		return map[string]string{"message_id": id}, nil
	case nocode.StepNote:
		text, err := render("text", step.Text)
		if err != nil {
			return nil, err
		}
		return map[string]string{}, a.store.AddNote(ctx, run.ChatID, key, text)
	case nocode.StepSetContactField:
		value, err := render("value", step.Value)
		if err != nil {
			return nil, err
		}
		chat, err := a.store.GetChat(ctx, run.ChatID)
		if err != nil {
			return nil, err
		}
		return map[string]string{"value": value}, a.store.SetContactField(ctx, chat.ContactID, step.Field, value)
	case nocode.StepHTTP:
		return a.httpStep(ctx, step, tc, key, render)
	}
	return nil, fmt.Errorf("step %d type %q is not carried out by an activity: %w", index+1, step.Type, domain.ErrInvalid)
}

func (a *Actions) httpStep(ctx context.Context, step nocode.Step, tc *nocode.Context, key string,
	render func(field, text string) (string, error)) (map[string]string, error) {
	u, err := nocode.RenderURL(step.URL, tc)
	if err != nil {
		return nil, fmt.Errorf("url: %v: %w", err, domain.ErrInvalid)
	}
	// What a failure says ends up in the chat for agents: it names the call
	// by scheme, host and path only, as the query may carry a secret
	// (?api_key=...). The full error, with what a name resolved to, is
	// logged for operators.
	shown := shownURL(u)
	req := nocode.Request{Method: step.Method, URL: u, Headers: map[string]string{"Idempotency-Key": key}}
	for k, v := range step.Headers {
		if req.Headers[k], err = render("headers."+k, v); err != nil {
			return nil, err
		}
	}
	if step.Body != nil {
		if req.Body, err = nocode.RenderBody(step.Body, tc); err != nil {
			return nil, fmt.Errorf("body: %v: %w", err, domain.ErrInvalid)
		}
	}
	resp, err := a.caller.Do(ctx, req)
	if err != nil {
		a.logger.WarnContext(ctx, "no-code HTTP step failed", "method", step.Method, "url", u, "error", err)
	}
	if errors.Is(err, nocode.ErrRefused) {
		return nil, fmt.Errorf("%s %s: refused: the target (or a redirect) is another host, or a private, loopback or link-local address not on the ActionHttpAllowList setting: %w",
			step.Method, shown, domain.ErrForbidden)
	}
	if err != nil {
		var nerr net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() {
			return nil, fmt.Errorf("%s %s: timed out", step.Method, shown)
		}
		return nil, fmt.Errorf("%s %s: the call failed (the reason is in omnichat's log)", step.Method, shown)
	}
	if resp.Status >= 400 && resp.Status < 500 && resp.Status != 408 && resp.Status != 429 {
		return nil, fmt.Errorf("%s %s answered %d: %w", step.Method, shown, resp.Status, domain.ErrInvalid)
	}
	if resp.Status >= 400 {
		return nil, fmt.Errorf("%s %s answered %d", step.Method, shown, resp.Status)
	}
	out := map[string]string{"status": strconv.Itoa(resp.Status)}
	for _, k := range step.Keep {
		v, ok := nocode.Pick(resp.JSON, k)
		if !ok {
			return nil, fmt.Errorf("the answer of %s %s has no field %s: %w", step.Method, shown, k, domain.ErrInvalid)
		}
		out[k] = v
	}
	return out, nil
}

// shownURL is a URL as agents may see it: scheme, host and path, without
// user info, query or fragment.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// templateContext gathers what templates see about the run's chat.
func (a *Actions) templateContext(ctx context.Context, run *ActionRun, outputs StepOutputs) (*nocode.Context, error) {
	chat, err := a.store.GetChat(ctx, run.ChatID)
	if err != nil {
		return nil, err
	}
	contact, err := a.store.GetContact(ctx, chat.ContactID)
	if err != nil {
		return nil, err
	}
	fields, err := a.store.ContactFields(ctx, contact.ID)
	if err != nil {
		return nil, err
	}
	queue, err := a.store.GetQueue(ctx, chat.QueueID)
	if err != nil {
		return nil, err
	}
	agent, err := a.store.GetUser(ctx, run.AgentID)
	if err != nil {
		return nil, err
	}
	last, err := a.store.LastInboundText(ctx, chat.ID)
	if err != nil {
		return nil, err
	}
	if outputs == nil {
		outputs = StepOutputs{}
	}
	return &nocode.Context{
		Chat:        nocode.ChatContext{ID: chat.ID.String(), Status: chat.Status, ChannelID: chat.ChannelID.String()},
		Contact:     nocode.ContactContext{ID: contact.ID.String(), Name: contact.Name, Fields: fields},
		Queue:       nocode.QueueContext{ID: queue.ID.String(), Name: queue.Name},
		Agent:       nocode.AgentContext{ID: agent.ID.String(), Name: agent.Name},
		LastInbound: last, Outputs: outputs,
	}, nil
}
