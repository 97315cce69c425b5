package chat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nikolalohinski/gonja/v2/parser"
)

// parseErrorMessage is gonja's parse error without the whole template
// source it quotes, with the position when gonja knows it and none when it
// does not (gonja writes "Line: 0 Col: 0" for a token without position).
func parseErrorMessage(err error) string {
	inner := err
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "failed to parse template") {
		inner = u
	}
	var se *parser.SyntaxError
	if errors.As(inner, &se) {
		if se.Line <= 0 {
			return se.Message
		}
		near := ""
		if se.Raw != "" {
			near = fmt.Sprintf(" near %q", se.Raw)
		}
		return fmt.Sprintf("line %d col %d%s: %s", se.Line, se.Column, near, se.Message)
	}
	return oneLine(inner.Error())
}

// renderError turns a failed rendering into a TemplateError: the limit or
// cancellation that stopped it, the template's own raise_exception text,
// or gonja's error chain made short.
func (t *Template) renderError(err error, b *budget, finished bool) error {
	if finished && b.err != nil {
		err = b.err
	}
	if errors.Is(err, ErrBudget) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if finished && b.err == nil { // gonja wrapped it: keep the innermost message
			msg := err.Error()
			if i := strings.LastIndex(msg, ErrBudget.Error()); i >= 0 {
				msg = msg[i:]
			}
			return &TemplateError{Name: t.name, Message: msg, Err: ErrBudget}
		}
		return &TemplateError{Name: t.name, Message: err.Error(), Err: err}
	}
	if finished && errors.Is(err, ErrNesting) {
		return &TemplateError{Name: t.name, Message: err.Error(), Err: err}
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, raisedPrefix); i >= 0 {
		return &TemplateError{Name: t.name, Message: msg[i+len(raisedPrefix):]}
	}
	if i := strings.LastIndex(msg, budgetPrefix); i >= 0 { // str methods' limits
		return &TemplateError{Name: t.name, Message: msg[i:], Err: ErrBudget}
	}
	return &TemplateError{Name: t.name, Message: operatorMessage(msg)}
}

// operatorFailure is how gonja reports an error of a rewritten operator
// (rewrite.go): as a failed call of its internal function, after the
// call's arguments, which can be a long string.
var operatorFailure = regexp.MustCompile(`invalid call to function '__ftune_[a-z_]+': `)

// operatorMessage is oneLine, but for an operator's failure the line and
// the operator's own message ("integer modulo by zero", "% formatting:
// ..."), which says what failed without the internal function's name.
func operatorMessage(msg string) string {
	locs := operatorFailure.FindAllStringIndex(msg, -1)
	if locs == nil {
		return oneLine(msg)
	}
	cause := msg[locs[len(locs)-1][1]:]
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		cause = "line " + m[1] + ": " + cause
	}
	return oneLine(cause)
}

// budgetPrefix starts the message of every ErrBudget error.
var budgetPrefix = ErrBudget.Error() + ": "

var lineRef = regexp.MustCompile(`at line (\d+)`)

// oneLine shortens gonja's error chains, which repeat a clause per nested
// call (a 64-deep macro recursion gave 7.6 KB): the outermost line number
// and the innermost cause.
func oneLine(msg string) string {
	msg = strings.TrimPrefix(msg, "unable to execute template: ")
	msg = strings.ReplaceAll(msg, "\n", " ")
	const max = 300
	if len(msg) <= max {
		return msg
	}
	where := ""
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		where = "line " + m[1] + ": "
	}
	cause := msg
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		cause = msg[i+2:]
	}
	if len(cause) > max {
		cause = cause[:max] + "…"
	}
	return where + cause
}
