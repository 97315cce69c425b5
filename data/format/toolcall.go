package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tool calling (function calling) data: an assistant message's calls, a
// tool message's result, and the record's list of tools. The layouts read:
//
//   - OpenAI's fine-tuning files, TRL's and transformers': "tool_calls":
//     [{"id", "type": "function", "function": {"name", "arguments"}}] on
//     an assistant message, whose content may then be "", null or absent;
//     arguments an object (transformers) or a string holding one
//     (OpenAI); the call's fields without the "function" wrapper, as
//     transformers' templates accept them; a tool message {"role":
//     "tool", "tool_call_id", "name", "content"}; "tools" beside the
//     messages, a list or a string holding one (datasets on the Hub).
//   - OpenAI's legacy functions: "function_call": {"name", "arguments"}
//     on an assistant message, a "function" message with its result, and
//     "functions" (the schemas without the tools' wrapper) on chat records.
//   - LLaMA-Factory's ShareGPT: a "function_call" turn whose value is the
//     JSON of one call {"name", "arguments"} or a list of them, and an
//     "observation" turn with the result; "tools" a string.
//
// Arguments and tools keep their keys in the order written: a JSON
// object read into a Go map would lose it, so their text is taken from
// the record's JSON text (rawJSON) and re-encoded compactly.

// rawJSON gives a value's JSON text as written, worked out on first use
// (most records never need it); nil, or a nil result, where the source
// has no JSON text for it (parquet's columns).
type rawJSON func() []byte

func (r rawJSON) text() []byte {
	if r == nil {
		return nil
	}
	return r()
}

// rawText is the JSON text b, as given.
func rawText(b []byte) rawJSON { return func() []byte { return b } }

// member is the text of the object's member key.
func (r rawJSON) member(key string) rawJSON {
	if r == nil {
		return nil
	}
	return sync.OnceValue(func() []byte {
		var m map[string]json.RawMessage
		if t := r.text(); t == nil || json.Unmarshal(t, &m) != nil {
			return nil
		}
		return m[key]
	})
}

// elements gives the texts of the list's elements, the list read once.
func (r rawJSON) elements() func(i int) rawJSON {
	if r == nil {
		return func(int) rawJSON { return nil }
	}
	list := sync.OnceValue(func() []json.RawMessage {
		var l []json.RawMessage
		if t := r.text(); t == nil || json.Unmarshal(t, &l) != nil {
			return nil
		}
		return l
	})
	return func(i int) rawJSON {
		return func() []byte {
			if l := list(); i < len(l) {
				return l[i]
			}
			return nil
		}
	}
}

// fieldJSON is the JSON text of record field name: a string holding JSON
// (a CSV cell, a parquet string) is its own text; other values are found
// in raw, the record's.
func fieldJSON(rec map[string]any, raw rawJSON, name string) rawJSON {
	if s, ok := rec[name].(string); ok {
		return rawText([]byte(s))
	}
	return raw.member(name)
}

// encodeJSON is v, a value decoded from raw (nil where unknown), as
// compact JSON text: raw re-encoded, which keeps its keys in their order,
// or else v with Go's encoding (a map's keys sorted).
func encodeJSON(v any, raw []byte) (string, error) {
	if raw != nil {
		if s, err := compactJSON(raw); err == nil {
			return s, nil
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// compactJSON re-encodes the JSON text raw compactly: no spaces between
// tokens, keys in the order written, numbers as written, strings as Go
// writes them without HTML escapes (so "\u00e9" and "é" give the same
// text).
func compactJSON(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object, key bool // key: in an object, a key comes next
		n           int  // members or elements written
	}
	var stack []frame
	out := make([]byte, 0, len(raw))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			out = append(out, byte(d))
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 {
			f := &stack[n-1]
			switch {
			case f.object && f.key:
				if f.n > 0 {
					out = append(out, ',')
				}
				out = appendJSONString(out, tok.(string))
				out = append(out, ':')
				f.key = false
				f.n++
				continue
			case f.object:
				f.key = true // tok is the value; a key follows it
			default:
				if f.n > 0 {
					out = append(out, ',')
				}
				f.n++
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			out = append(out, byte(t))
			stack = append(stack, frame{object: t == '{', key: t == '{'})
		case string:
			out = appendJSONString(out, t)
		case json.Number:
			out = append(out, t...)
		case bool:
			out = strconv.AppendBool(out, t)
		case nil:
			out = append(out, "null"...)
		}
	}
	return string(out), nil
}

func appendJSONString(out []byte, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(out, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
}

// jsonInString reads s, a string holding JSON (a call's arguments, a
// record's tools, a function_call turn's value), as the value it holds,
// refusing what a JSON reader would read otherwise than written: invalid
// UTF-8 and lone surrogate escapes (U+FFFD), repeated keys (the last one
// kept), and more than one value. want says what s should hold.
func jsonInString(s, want string) (any, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w in the string holding %s", ErrInvalidUTF8, want)
	}
	if off, bad := loneSurrogate([]byte(s)); bad {
		return nil, fmt.Errorf("%w: the string holding %s has a lone UTF-16 surrogate escape at byte %d (JSON readers would write U+FFFD for it)", ErrInvalidUTF8, want, off+1)
	}
	if err := stringValues(s, "the string holding "+want); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: expected %s, got a string that is not JSON (%q: %v)", ErrBadValue, want, clip(s), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: expected %s, got a string with more after its JSON value (%q)", ErrBadValue, want, clip(s))
	}
	if k, _, dup := duplicateKey([]byte(s)); dup {
		return nil, fmt.Errorf("%w: the string holding %s has key %q twice in one object (JSON readers keep only the last value)", ErrBadValue, want, k)
	}
	return v, nil
}

// clip shortens s for a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

// objectText reads v, an object or a string holding one, as a JSON
// object's compact text (its keys in their order); raw is v's text in the
// record. what names it in messages.
func objectText(v any, raw rawJSON, what string) (string, error) {
	want := fmt.Sprintf("a JSON object (%s)", what)
	if s, ok := v.(string); ok {
		x, err := jsonInString(s, want)
		if err != nil {
			return "", err
		}
		if _, ok := x.(map[string]any); !ok {
			return "", fmt.Errorf("%w: expected %s, got a string holding %s (%q)", ErrBadValue, want, typeName(x), clip(s))
		}
		return compactJSON([]byte(s))
	}
	if _, ok := v.(map[string]any); !ok {
		return "", fmt.Errorf("%w: expected %s or a string holding one, got %s", ErrBadValue, want, typeName(v))
	}
	return encodeJSON(v, raw.text())
}

// toolCalls reads a message's calls: "tool_calls", a list of calls, or
// OpenAI's legacy "function_call", one. Null or [] is none.
func toolCalls(obj map[string]any, raw rawJSON) ([]ToolCall, error) {
	list, legacy := obj["tool_calls"], obj["function_call"]
	if legacy != nil && !isEmptyList(list) {
		return nil, fmt.Errorf("%w: the message has both \"tool_calls\" and \"function_call\" (give its calls once)", ErrBadValue)
	}
	if legacy != nil {
		c, err := parseCall(legacy, raw.member("function_call"))
		if err != nil {
			return nil, fmt.Errorf("function_call: %w", err)
		}
		return []ToolCall{c}, nil
	}
	if list == nil {
		return nil, nil
	}
	l, ok := list.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: field \"tool_calls\": expected a list of calls, got %s", ErrBadValue, typeName(list))
	}
	return parseCalls(l, raw.member("tool_calls"))
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return v == nil || ok && len(l) == 0
}

// parseCalls reads a list of calls, raw its text.
func parseCalls(l []any, raw rawJSON) ([]ToolCall, error) {
	if len(l) == 0 {
		return nil, nil
	}
	elem := raw.elements()
	calls := make([]ToolCall, 0, len(l))
	for j, x := range l {
		c, err := parseCall(x, elem(j))
		if err != nil {
			return nil, &callError{j, err}
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// callError is the error of a message's call j.
type callError struct {
	j   int
	err error
}

func (e *callError) Error() string { return fmt.Sprintf("tool call %d: %v", e.j, e.err) }
func (e *callError) Unwrap() error { return e.err }

// inMessage places err, about message i of list name: "messages[2]: ...",
// or "messages[2], tool call 0: ..." for one of its calls.
func inMessage(name string, i int, err error) error {
	if ce, ok := err.(*callError); ok {
		return fmt.Errorf("%s[%d], tool call %d: %w", name, i, ce.j, ce.err)
	}
	return fmt.Errorf("%s[%d]: %w", name, i, err)
}

// parseCall reads one call: {"id", "type": "function", "function":
// {"name", "arguments"}}, or its function's fields without the wrapper
// ({"name", "arguments"}, and "id"), as transformers' templates accept
// it and OpenAI's legacy function_call and LLaMA-Factory write it.
func parseCall(v any, raw rawJSON) (ToolCall, error) {
	c, ok := v.(map[string]any)
	if !ok {
		return ToolCall{}, fmt.Errorf("%w: expected an object {\"type\": \"function\", \"function\": {\"name\": ..., \"arguments\": ...}}, got %s", ErrBadValue, typeName(v))
	}
	var call ToolCall
	var err error
	if call.ID, err = field(c, "id", false); err != nil {
		return call, err
	}
	if t, err := field(c, "type", false); err != nil {
		return call, err
	} else if t != "" && t != "function" {
		return call, fmt.Errorf("%w: type %q: only function calls are read (\"type\": \"function\")", ErrBadValue, t)
	}
	fn, fnRaw, prefix := c, raw, ""
	if w, ok := c["function"]; ok && w != nil {
		for _, k := range []string{"name", "arguments"} {
			if _, dup := c[k]; dup {
				return call, fmt.Errorf("%w: the call has %q beside \"function\", which holds the function's (give it once)", ErrBadValue, k)
			}
		}
		if fn, ok = w.(map[string]any); !ok {
			return call, fmt.Errorf("%w: field \"function\": expected an object {\"name\": ..., \"arguments\": ...}, got %s", ErrBadValue, typeName(w))
		}
		fnRaw, prefix = raw.member("function"), "function."
	}
	if call.Name, err = field(fn, "name", false); err != nil {
		return call, fmt.Errorf("%s%w", prefix, err)
	}
	if strings.TrimSpace(call.Name) == "" {
		return call, fmt.Errorf("%w: no %sname (the function called)", ErrBadValue, prefix)
	}
	args, ok := fn["arguments"]
	if !ok || args == nil {
		return call, fmt.Errorf("%w: no %sarguments (give {} to call %q without any)", ErrBadValue, prefix, call.Name)
	}
	if call.Arguments, err = objectText(args, fnRaw.member("arguments"), "the call's arguments"); err != nil {
		return call, fmt.Errorf("%sarguments: %w", prefix, err)
	}
	return call, nil
}

// functionCallTurn reads the value of LLaMA-Factory's "function_call"
// turn: the JSON text of one call or of a list of them (parallel calls).
func functionCallTurn(v any, raw rawJSON) ([]ToolCall, error) {
	want := "the JSON of a call, {\"name\": ..., \"arguments\": {...}}, or a list of them"
	x := v
	switch s, ok := v.(string); {
	case v == nil:
		return nil, fmt.Errorf("%w: the function_call turn's value is null (expected %s)", ErrBadValue, want)
	case ok:
		var err error
		if x, err = jsonInString(s, want); err != nil {
			return nil, err
		}
		raw = rawText([]byte(s))
	}
	// Otherwise the value is the call (or list) itself rather than its text.
	if l, ok := x.([]any); ok {
		if len(l) == 0 {
			return nil, fmt.Errorf("%w: the function_call turn's value is an empty list (expected %s)", ErrBadValue, want)
		}
		return parseCalls(l, raw)
	}
	c, err := parseCall(x, raw)
	if err != nil {
		return nil, err
	}
	return []ToolCall{c}, nil
}

// isFunctionCallRole says whether role names LLaMA-Factory's function_call
// turn, an assistant message whose value is its calls.
func isFunctionCallRole(role string) bool {
	return strings.EqualFold(strings.TrimSpace(role), "function_call")
}

// tools reads the record's tools: field m.Tools, a list of tool schemas
// or a string holding one, as the list's compact JSON text (its keys in
// their order); on chat records, OpenAI's legacy "functions" too, the
// schemas each wrapped as a tool ({"type": "function", "function":
// schema}). Absent, null, "" and [] are no tools (a template given an
// empty list may still print a tool preamble; TRL passes `tools or
// None`). from is the field read.
func (m Mapping) tools(rec map[string]any, raw rawJSON) (text, from string, err error) {
	if m.Tools != "" {
		// LLaMA-Factory's ShareGPT files list the functions' schemas
		// bare ({"name", "description", "parameters"}), which it wraps
		// itself; chat templates read tool.function (Mistral's, ...). Its
		// ranking and KTO data are a conversation (Messages) beside the
		// answers or the tag, in ShareGPT or OpenAI roles.
		wrap := wrapNone
		if m.Shape == ShapeShareGPT || m.Messages != "" && (m.Shape == ShapePreference || m.Shape == ShapeUnpairedPreference) {
			wrap = wrapBare
		}
		if text, err = toolList(rec[m.Tools], fieldJSON(rec, raw, m.Tools), m.Tools, wrap); err != nil {
			return "", m.Tools, err
		}
		if text != "" {
			from = m.Tools
		}
	}
	if m.Shape != ShapeChat || m.Tools == "functions" {
		return text, from, nil
	}
	legacy, err := toolList(rec["functions"], fieldJSON(rec, raw, "functions"), "functions", wrapAll)
	switch {
	case err != nil:
		return "", "functions", err
	case legacy != "" && text != "":
		return "", from, fmt.Errorf("%w: fields %q and \"functions\" both list the tools (give them once)", ErrBadValue, from)
	case legacy != "":
		return legacy, "functions", nil
	}
	return text, from, nil
}

// How toolList wraps schemas as tools ({"type": "function", "function":
// schema}): none, all (OpenAI's legacy functions), or those without a
// "function" field (LLaMA-Factory's bare schemas).
const (
	wrapNone = iota
	wrapAll
	wrapBare
)

// toolList reads v, field name, as a list of tool schemas (objects),
// wrapped as wrap says.
func toolList(v any, raw rawJSON, name string, wrap int) (string, error) {
	want := "a list of tool schemas ([{\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": ...}}])"
	if wrap == wrapAll {
		want = "a list of function schemas ([{\"name\": ..., \"parameters\": ...}])"
	}
	if s, ok := v.(string); ok {
		if strings.TrimSpace(s) == "" {
			return "", nil
		}
		x, err := jsonInString(s, want)
		if err != nil {
			return "", fmt.Errorf("field %q: %w", name, err)
		}
		if _, ok := x.([]any); !ok {
			return "", fmt.Errorf("%w: field %q: expected %s or a string holding one, got a string holding %s", ErrBadValue, name, want, typeName(x))
		}
		v = x
	}
	if v == nil {
		return "", nil
	}
	l, ok := v.([]any)
	if !ok {
		return "", fmt.Errorf("%w: field %q: expected %s or a string holding one, got %s", ErrBadValue, name, want, typeName(v))
	}
	if len(l) == 0 {
		return "", nil
	}
	for i, t := range l {
		if _, ok := t.(map[string]any); !ok {
			return "", fmt.Errorf("%w: %s[%d]: expected an object (a tool's schema), got %s", ErrBadValue, name, i, typeName(t))
		}
	}
	if wrap == wrapBare && !slices.ContainsFunc(l, func(t any) bool { _, has := t.(map[string]any)["function"]; return !has }) {
		wrap = wrapNone // every one a tool already
	}
	if wrap == wrapNone {
		return encodeJSON(v, raw.text())
	}
	elem := raw.elements()
	var b strings.Builder
	b.WriteByte('[')
	for i, t := range l {
		s, err := encodeJSON(t, elem(i).text())
		if err != nil {
			return "", fmt.Errorf("%w: %s[%d]: %v", ErrBadValue, name, i, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if _, tool := t.(map[string]any)["function"]; wrap == wrapBare && tool {
			b.WriteString(s)
			continue
		}
		b.WriteString(`{"type":"function","function":` + s + `}`)
	}
	b.WriteByte(']')
	return b.String(), nil
}

// hasValue says whether a record's field holds something: not absent,
// null, "" or an empty list (as text or not).
func hasValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		t := strings.TrimSpace(x)
		return t != "" && strings.Join(strings.Fields(t), "") != "[]"
	case []any:
		return len(x) > 0
	}
	return true
}
