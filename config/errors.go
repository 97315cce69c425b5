package config

import (
	"errors"
	"strings"
)

// Errors that callers may branch on (with errors.Is on the returned error).
var (
	// ErrUnknownKey: the file or a --set names a key that does not exist.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadValue: a value has the wrong type or cannot be parsed.
	ErrBadValue = errors.New("bad value")
	// ErrInvalid: a value is out of range or conflicts with another.
	ErrInvalid = errors.New("invalid setting")
)

// FieldError is one problem at one place: Where is "file:line", a --set
// argument, "default", or "set in code" (see RunConfig.Where).
type FieldError struct {
	Where string
	Path  string // dotted key path, e.g. training.optimizer.lr
	Msg   string
	Kind  error // ErrUnknownKey, ErrBadValue or ErrInvalid
}

func (e *FieldError) Error() string {
	var b strings.Builder
	inline := e.Where == "default" || e.Where == setInCode
	if e.Where != "" && !inline {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if inline {
			b.WriteString(" (" + e.Where + ")")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Kind }

// ErrorList is every problem found in one pass, so that a user fixes a
// file in one go rather than one error per run.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each FieldError.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// err returns nil for an empty list (a nil ErrorList in an error interface
// would not be nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
