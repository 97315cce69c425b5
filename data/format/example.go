package format

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Role of a chat message after normalisation. Every reader maps the names
// found in files (sharegpt's human/gpt, ...) onto these three.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is an assistant turn's thinking, read from a
	// message's "reasoning_content" (what transformers' chat templates
	// read: Qwen3 writes it in a <think> block), or from "reasoning" or
	// "thinking" as other datasets name it. Empty means absent. Only
	// assistant messages may have it.
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

// Example is one training example, normalised from any file shape.
// Exactly one of Messages (chat, alpaca, input/output shapes) and Text
// (completion shape, plain text) is set.
type Example struct {
	Messages []Message `json:"messages,omitempty"`
	Text     string    `json:"text,omitempty"`
	// Source is "file:line" of the record the example came from, so that
	// later stages (tokenisation, validation reports) can point at it.
	Source string `json:"-"`
}

// IsChat reports whether the example is a conversation rather than raw text.
func (e Example) IsChat() bool { return len(e.Messages) > 0 }

// Errors callers can branch on with errors.Is. A *PosError wraps them with
// the file position.
var (
	// ErrMalformed: the bytes are not valid JSON/CSV/parquet.
	ErrMalformed = errors.New("malformed record")
	// ErrMissingColumn: a record lacks a field that its shape needs.
	ErrMissingColumn = errors.New("missing column")
	// ErrEmptyDataset: a file holds no example at all.
	ErrEmptyDataset = errors.New("empty dataset")
	// ErrInvalidUTF8: text is not valid UTF-8 (JSON decoders would silently
	// replace it with U+FFFD, which would train the model on garbage).
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrUnknownRole: a chat message has a role ftune cannot map.
	ErrUnknownRole = errors.New("unknown role")
	// ErrBadValue: a field has the wrong JSON type or an empty value.
	ErrBadValue = errors.New("bad value")
	// ErrUnsupported: the file extension or shape is not supported.
	ErrUnsupported = errors.New("unsupported")
	// ErrRecordTooLarge: one record of a streamed file runs past
	// Options.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("record too large")
)

// PosError is an error at a position in an input file. Line and Column are
// 1-based; Column counts bytes and is 0 when unknown (a parquet row, or a
// whole-record problem).
type PosError struct {
	File   string
	Line   int
	Column int
	Msg    string
	Err    error // one of the Err* sentinels
}

func (e *PosError) Error() string {
	pos := fmt.Sprintf("%s:%d", e.File, e.Line)
	if e.Column > 0 {
		pos += fmt.Sprintf(":%d", e.Column)
	}
	// Messages built from a wrapped sentinel already name it.
	if e.Err != nil && !strings.Contains(e.Msg, e.Err.Error()) {
		return fmt.Sprintf("%s: %v: %s", pos, e.Err, e.Msg)
	}
	return pos + ": " + e.Msg
}

func (e *PosError) Unwrap() error { return e.Err }

// normaliseRole maps the role names used by chat and sharegpt datasets.
func normaliseRole(role string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "system":
		return RoleSystem, true
	case "user", "human":
		return RoleUser, true
	case "assistant", "gpt", "model", "bot":
		return RoleAssistant, true
	}
	return "", false
}

// Validate checks what every later stage relies on: valid UTF-8, known
// roles, a conversation with at least one non-empty assistant answer
// (otherwise nothing but end-of-turn tokens would be learnt under
// response-only masking) or a non-empty text.
func (e Example) Validate() error {
	if !e.IsChat() {
		if e.Text == "" {
			return fmt.Errorf("%w: empty text and no messages", ErrBadValue)
		}
		if !utf8.ValidString(e.Text) {
			return fmt.Errorf("%w in text", ErrInvalidUTF8)
		}
		return nil
	}
	assistant, answered := false, false
	for i, m := range e.Messages {
		switch m.Role {
		case RoleSystem, RoleUser:
		case RoleAssistant:
			assistant = true
			answered = answered || strings.TrimSpace(m.Content) != ""
		default:
			return fmt.Errorf("%w %q in message %d (want system, user or assistant)", ErrUnknownRole, m.Role, i)
		}
		if !utf8.ValidString(m.Content) {
			return fmt.Errorf("%w in message %d", ErrInvalidUTF8, i)
		}
		if m.ReasoningContent != "" {
			// A template reads the reasoning of assistant turns only: on
			// another role it would be dropped without a word.
			if m.Role != RoleAssistant {
				return fmt.Errorf("%w: message %d (%s) has reasoning content; only assistant messages can have it", ErrBadValue, i, m.Role)
			}
			if !utf8.ValidString(m.ReasoningContent) {
				return fmt.Errorf("%w in the reasoning content of message %d", ErrInvalidUTF8, i)
			}
			// Templates take the reasoning field over a <think> block in
			// the content, which would then be learnt as answer text.
			if strings.Contains(m.Content, "</think>") {
				return fmt.Errorf("%w: message %d has reasoning content and a <think> block in its content too (give the thinking once)", ErrBadValue, i)
			}
		}
	}
	if !assistant {
		return fmt.Errorf("%w: conversation has no assistant message", ErrBadValue)
	}
	if !answered {
		return fmt.Errorf("%w: every assistant answer is empty (only the end-of-turn token would be learnt)", ErrBadValue)
	}
	return nil
}
