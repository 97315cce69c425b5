package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnsupported is wrapped by errors for tokenizer features this package
// does not implement; the message names the JSON field.
var ErrUnsupported = errors.New("unsupported")

// jobj is a JSON object with its path in the file, so every error can name
// the field it is about (e.g. "pre_tokenizer.pretokenizers[1].pattern").
type jobj struct {
	path string
	m    map[string]json.RawMessage
}

func parseObj(path string, raw json.RawMessage) (jobj, error) {
	name := path
	if name == "" {
		name = "top level"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return jobj{}, fmt.Errorf("%s: expected an object: %w", name, err)
	}
	if m == nil {
		return jobj{}, fmt.Errorf("%s: expected an object, got null", name)
	}
	return jobj{path: path, m: m}, nil
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func (o jobj) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o jobj) has(key string) bool { return !isNull(o.m[key]) }

func (o jobj) unsupported(what string) error {
	return fmt.Errorf("%s: %s: %w", o.path, what, ErrUnsupported)
}

func (o jobj) typ() (string, error) {
	return o.str("type", "")
}

// name is the object's path and type, for errors about a component at
// work: "normalizer.normalizers[3] (Replace)".
func (o jobj) name() string {
	t, _ := o.typ()
	return fmt.Sprintf("%s (%s)", o.path, t)
}

func (o jobj) str(key, def string) (string, error) {
	raw := o.m[key]
	if isNull(raw) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: expected a string: %w", o.field(key), err)
	}
	return s, nil
}

func (o jobj) boolean(key string, def bool) (bool, error) {
	raw := o.m[key]
	if isNull(raw) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("%s: expected a boolean: %w", o.field(key), err)
	}
	return b, nil
}

func (o jobj) integer(key string, def int) (int, error) {
	raw := o.m[key]
	if isNull(raw) {
		return def, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%s: expected an integer: %w", o.field(key), err)
	}
	return n, nil
}

func (o jobj) obj(key string) (jobj, error) {
	return parseObj(o.field(key), o.m[key])
}

func (o jobj) list(key string) ([]json.RawMessage, error) {
	raw := o.m[key]
	if isNull(raw) {
		return nil, nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("%s: expected a list: %w", o.field(key), err)
	}
	return l, nil
}

// objList parses o[key] as a list of objects.
func (o jobj) objList(key string) ([]jobj, error) {
	l, err := o.list(key)
	if err != nil {
		return nil, err
	}
	out := make([]jobj, len(l))
	for i, raw := range l {
		if out[i], err = parseObj(fmt.Sprintf("%s[%d]", o.field(key), i), raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sequence builds each object of o's list key with build: the members of a
// tokenizers "Sequence" (of post-processors), in order.
func sequence[T any](o jobj, key string, build func(jobj) (T, error)) ([]T, error) {
	subs, err := o.objList(key)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(subs))
	for _, s := range subs {
		v, err := build(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// pattern reads a tokenizers Pattern: {"String": "..."} or {"Regex": "..."}.
func (o jobj) pattern(key string) (lit string, re string, isRegex bool, err error) {
	p, err := o.obj(key)
	if err != nil {
		return "", "", false, err
	}
	if p.has("Regex") {
		re, err = p.str("Regex", "")
		return "", re, true, err
	}
	if _, ok := p.m["String"]; ok {
		lit, err = p.str("String", "")
		return lit, "", false, err
	}
	return "", "", false, fmt.Errorf("%s: expected {\"String\": ...} or {\"Regex\": ...}", p.path)
}

// oneChar reads a string field that must hold exactly one character.
func (o jobj) oneChar(key string, def rune) (rune, error) {
	s, err := o.str(key, string(def))
	if err != nil {
		return 0, err
	}
	r := []rune(s)
	if len(r) != 1 {
		return 0, fmt.Errorf("%s: expected one character, got %q", o.field(key), s)
	}
	return r[0], nil
}
