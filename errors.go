package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/recipe"
)

// ErrInvalidInput is matched (errors.Is) by the errors of calls refused
// for what their caller passed, before any work: GenerateOptions that
// Validate refuses, an empty prompt, Chat without messages, a message
// with an unknown role (ErrUnknownRole) or text that is not UTF-8, Load's
// device and precision names, Export's format and option checks,
// FineTune's and FineTunePreferences' example checks (ErrNoExamples
// included), a run configuration that config's Validate refuses (Train,
// FineTune, Evaluate; config.ErrInvalid and config.FieldError name the
// key), a nil context, and a nil or zero Model (ErrNotLoaded). A service
// can answer them as a bad request; the error's message is the one
// without it, naming what was wrong.
var ErrInvalidInput = errors.New("invalid input")

// ErrUnknownRole is matched by the error of a message whose role is not
// one the call takes: Chat's and Send's (chat.ErrUnknownRole, which it
// is) and FineTune's (format.ErrUnknownRole, which those errors match
// too). They match ErrInvalidInput as well.
var ErrUnknownRole = chat.ErrUnknownRole

// inputError marks err as the caller's: it matches ErrInvalidInput, and
// reads and unwraps as err.
type inputError struct{ err error }

func (e *inputError) Error() string        { return e.err.Error() }
func (e *inputError) Unwrap() error        { return e.err }
func (e *inputError) Is(target error) bool { return target == ErrInvalidInput }

// invalid marks err (not nil) as invalid input.
func invalid(err error) error { return &inputError{err} }

// invalidf is fmt.Errorf marked as invalid input.
func invalidf(format string, a ...any) error { return invalid(fmt.Errorf(format, a...)) }

// unknownRole is a training example's message role that data/format does
// not take: it matches both packages' ErrUnknownRole, so that one
// sentinel (ErrUnknownRole) answers for Chat and FineTune alike.
type unknownRole string

func (r unknownRole) Error() string {
	return fmt.Sprintf("unknown role %q (want system, user, assistant or tool)", string(r))
}

func (r unknownRole) Is(target error) bool {
	return target == chat.ErrUnknownRole || target == format.ErrUnknownRole
}

// checkRoles refuses a message of msgs whose role a training example may
// not have (data/format's rule, checked before any work).
func checkRoles(msgs []Message) error {
	for i, m := range msgs {
		switch m.Role {
		case format.RoleSystem, format.RoleUser, format.RoleAssistant, format.RoleTool:
		default:
			return fmt.Errorf("message %d: %w", i, unknownRole(m.Role))
		}
	}
	return nil
}

// checkTools refuses tools (a list of tool schemas) that are not a JSON
// list of objects, and reports how many there are (nil: none).
func checkTools(tools json.RawMessage) (int, error) {
	if len(tools) == 0 {
		return 0, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(tools, &list); err != nil {
		return 0, fmt.Errorf("tools: want a JSON list of tool schemas ([{\"type\": \"function\", \"function\": {...}}]), got %.40s", tools)
	}
	for i, t := range list {
		var schema map[string]json.RawMessage
		if err := json.Unmarshal(t, &schema); err != nil {
			return 0, fmt.Errorf("tools[%d]: want a tool schema (a JSON object), got %.40s", i, t)
		}
	}
	return len(list), nil
}

// ErrNotLoaded is wrapped by the error of a Model's method called on a
// nil *Model, or on one that Load did not make (a zero Model, or one
// missing its Net, Tokenizer or Template); it matches ErrInvalidInput
// too. Such a call used to panic on a nil pointer.
var ErrNotLoaded = errors.New("the model is not loaded (a nil or zero Model): make it with Load")

// ready refuses a call on a Model that Load did not make, for op (the
// call's name in the error).
func (m *Model) ready(op string) error {
	if m == nil || m.Net == nil || m.Tokenizer == nil || m.Template == nil {
		return invalidf("%s: %w", op, ErrNotLoaded)
	}
	return nil
}

// checkCtx refuses a nil ctx, as invalid input: a call used to panic on
// it (ctx.Err) at once, or worse, deep inside a run.
func checkCtx(op string, ctx context.Context) error {
	if ctx == nil {
		return invalidf("%s: nil context (pass context.Background() for one that is never cancelled)", op)
	}
	return nil
}

// ErrMemoryPlan is matched by the error of a run (Train, FineTune)
// refused before its first step because its memory plan does not fit
// the machine, the GPU or its device-memory cap; the message says the
// arithmetic and what to lower.
var ErrMemoryPlan = recipe.ErrMemoryPlan
