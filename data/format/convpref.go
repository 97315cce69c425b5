package format

import (
	"encoding/json"
	"fmt"
	"strings"
)

// conversationPreference reads a preference record whose prompt is a
// conversation of its own (Mapping.Messages): LLaMA-Factory's ShareGPT
// ranking data,
//
//	{"conversations": [{"from": "human", "value"}, ...], "chosen": {"from": "gpt", "value"}, "rejected": {...}, "system", "tools"}
//
// or its OpenAI-role form ("messages", answers as {"role", "content"}).
// The conversation is the prompt and each completion the assistant's
// message after it, read as TRL's conversational layout reads its lists
// of messages (LLaMA-Factory appends the answer to the conversation just
// so). A completion may also be a list of messages, or text (the
// assistant's answer), both completions in one form. f is rec with its
// JSON-list strings decoded (a CSV cell); a string holding one message's
// JSON object is that message too.
func (m Mapping) conversationPreference(rec, f map[string]any, raw rawJSON) (Example, error) {
	var ex Example
	p, err := m.messageList(f, m.Messages, fieldJSON(rec, raw, m.Messages))
	if err != nil {
		return ex, err
	}
	var forms [2]string
	var replies [2][]Message
	for i, name := range []string{m.Chosen, m.Rejected} {
		v, text := f[name], fieldJSON(rec, raw, name)
		obj, ok, err := m.jsonMessage(v, name)
		if err != nil {
			return ex, err
		}
		if ok {
			v, text = obj, nil // a cell's text is the object's
			if s, isText := f[name].(string); isText {
				text = rawText([]byte(s))
			}
		}
		forms[i] = typeName(v)
		switch x := v.(type) {
		case map[string]any:
			// One message, read as a list of it, so that it is checked as
			// every message is (its role, its content, its tool calls).
			replies[i], err = m.messageList(map[string]any{name: []any{x}}, name, listOf(text))
		case []any:
			replies[i], err = m.messageList(f, name, text)
		default:
			var t string
			t, err = field(f, name, true)
			replies[i] = []Message{{Role: RoleAssistant, Content: t}} // a bare answer
		}
		if err != nil {
			return ex, err
		}
	}
	if forms[0] != forms[1] {
		return ex, fmt.Errorf("%w: %q is %s and %q is %s: give both completions in one form (a message each, as LLaMA-Factory writes them)", ErrBadValue, m.Chosen, forms[0], m.Rejected, forms[1])
	}
	if p, err = m.withSystem(f, p, fmt.Sprintf("%q", m.Messages)); err != nil {
		return ex, err
	}
	ex.Messages, ex.Chosen, ex.Rejected = p, &Reply{Messages: replies[0]}, &Reply{Messages: replies[1]}
	return ex, ex.Validate()
}

// listOf is the JSON text of a list holding the one value whose text is
// r (nil where r is).
func listOf(r rawJSON) rawJSON {
	if r == nil {
		return nil
	}
	return func() []byte {
		t := r.text()
		if t == nil {
			return nil
		}
		return append(append([]byte{'['}, t...), ']')
	}
}

// jsonMessage reads v, field name's value, as one message when it is a
// string holding a JSON object with a role (a CSV cell), as jsonMessages
// reads a list; other text is text.
func (m Mapping) jsonMessage(v any, name string) (map[string]any, bool, error) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return nil, false, nil
	}
	if err := stringValues(s, fmt.Sprintf("field %q", name)); err != nil {
		return nil, false, err
	}
	var obj map[string]any
	if json.Unmarshal([]byte(s), &obj) != nil {
		return nil, false, nil
	}
	if _, hasRole := obj[m.Role]; !hasRole {
		return nil, false, nil
	}
	if off, bad := loneSurrogate([]byte(s)); bad {
		return nil, false, fmt.Errorf("%w: field %q: the JSON message has a lone UTF-16 surrogate escape at byte %d (JSON readers would write U+FFFD for it)", ErrInvalidUTF8, name, off+1)
	}
	if k, _, dup := duplicateKey([]byte(s)); dup {
		return nil, false, fmt.Errorf("%w: field %q: the JSON message has key %q twice (JSON readers keep only the last value)", ErrBadValue, name, k)
	}
	return obj, true, nil
}

// isMessageList says whether v, a completion's value, is a list of
// messages: a list, or a string holding one (a CSV cell).
func isMessageList(v any) bool {
	switch x := v.(type) {
	case []any:
		return true
	case string:
		return strings.HasPrefix(strings.TrimSpace(x), "[")
	}
	return false
}
