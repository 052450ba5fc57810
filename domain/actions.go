package domain

import "strings"

// Kinds of chat actions: what an action runs.
const (
	ActionWorkflow = "workflow"
	ActionNoCode   = "nocode"
	ActionBuiltin  = "builtin"
)

// Workflow types omnichat itself serves for actions.
const (
	// BuiltinCreateCase is the built-in "Create case" action.
	BuiltinCreateCase = "CreateCaseFromChat"
	// NoCodeWorkflow runs any no-code definition.
	NoCodeWorkflow = "NoCodeAction"
)

// Statuses of an action run.
const (
	RunStarted   = "started"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunTimedOut  = "timed_out"
)

// CaseNew is a new case's status.
const CaseNew = "new"

// FieldProblem names one field of a request at fault.
type FieldProblem struct {
	Field   string
	Message string
}

// FieldsError is a refusal that names the fields at fault. It is ErrInvalid
// (422); BadRequest asks for 400 (a document that cannot be used as sent),
// Conflict for 409 (the value is taken).
type FieldsError struct {
	Fields     []FieldProblem
	BadRequest bool
	Conflict   bool
}

func (e *FieldsError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + " " + f.Message
	}
	return strings.Join(parts, "; ")
}

// Unwrap makes a FieldsError an ErrInvalid, or an ErrConflict.
func (e *FieldsError) Unwrap() error {
	if e.Conflict {
		return ErrConflict
	}
	return ErrInvalid
}

// InvalidField is a FieldsError about one field (422).
func InvalidField(field, message string) error {
	return &FieldsError{Fields: []FieldProblem{{Field: field, Message: message}}}
}
