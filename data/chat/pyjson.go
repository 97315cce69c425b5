package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/ftune/ftune/internal/pyfmt"
)

// Templates see tool schemas and tool-call arguments as transformers gives
// them: the Python values json.loads makes of the JSON (objects keep their
// key order, integers stay integers, other numbers are floats), printed
// back by a tojson that is Python's json.dumps, as transformers defines
// the filter (ensure_ascii off, Python's separators). Llama 3.1 prints the
// tools with tojson(indent=4), Qwen prints each schema and the arguments
// with tojson: a byte of difference is a different prompt from the one
// the model was tuned on.

// maxJSONDepth bounds the nesting of a JSON value decoded for a template
// (the values' printer recurses; gonja's own printing is bounded at
// maxValueDepth).
const maxJSONDepth = maxValueDepth

// decodeJSON decodes one JSON value into what a template sees: *exec.Dict
// for objects (key order kept; an empty one is emptyDict's map, false as
// Python's {} is), []any for arrays, int64 for integers
// (*big.Int past 64 bits), float64 for other numbers, string, bool, nil.
func decodeJSON(text string) (any, error) {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	v, err := decodeJSONValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeJSONValue(d *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested more than %d deep", maxJSONDepth)
	}
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			dict := exec.NewDict()
			// Each key's place in dict.Pairs: finding a repeated key by
			// scanning the pairs made an object of n keys cost n² (40,000
			// keys took 14 s; a record may hold millions).
			place := map[string]int{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeJSONValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				// A repeated key keeps its first place and its last
				// value, as a Python dict built by json.loads does.
				key := k.(string)
				if i, ok := place[key]; ok {
					dict.Pairs[i].Value = exec.AsValue(v)
					continue
				}
				place[key] = len(dict.Pairs)
				dict.Pairs = append(dict.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(v)})
			}
			_, err = d.Token() // '}'
			if len(dict.Pairs) == 0 {
				return emptyDict(), err
			}
			return dict, err
		case '[':
			list := []any{}
			for d.More() {
				v, err := decodeJSONValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err = d.Token() // ']'
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return pyNumber(string(t))
	case nil:
		return pyNone, nil // None, not undefined (pyprint.go)
	default: // string, bool
		return t, nil
	}
}

// pyNumber is what Python's json.loads makes of a number: an int when it
// has no fraction or exponent (of any size), a float otherwise (inf past
// the float range, as Python's float() gives).
func pyNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		b, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("bad number %q", s)
		}
		return b, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, err
	}
	return f, nil
}

// pyDumpOptions are json.dumps' arguments that tojson passes on.
type pyDumpOptions struct {
	indent      *string // nil: one line
	itemSep     string
	keySep      string
	sortKeys    bool
	ensureASCII bool
}

// pyToJSON is transformers' tojson filter: json.dumps(x,
// ensure_ascii=False, indent=None, separators=None, sort_keys=False),
// each argument by keyword (or the first, indent, by position).
func pyToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	o := pyDumpOptions{}
	kw := map[string]*exec.Value{}
	for k, v := range params.KwArgs {
		kw[k] = v
	}
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(params.Args) > 1 {
		return exec.AsValue(errors.New("tojson takes its arguments but indent by keyword"))
	}
	if len(params.Args) == 1 {
		if _, dup := kw["indent"]; dup {
			return exec.AsValue(errors.New("tojson: indent given twice"))
		}
		kw["indent"] = params.Args[0]
	}
	for k := range kw {
		if !slices.Contains(names, k) {
			return exec.AsValue(fmt.Errorf("tojson: unexpected argument %q", k))
		}
	}
	if v := kw["ensure_ascii"]; v != nil {
		o.ensureASCII = v.IsTrue()
	}
	if v := kw["sort_keys"]; v != nil {
		o.sortKeys = v.IsTrue()
	}
	if v := kw["indent"]; v != nil && !v.IsNil() {
		var ind string
		switch {
		case v.IsInteger():
			ind = strings.Repeat(" ", max(0, v.Integer()))
		case v.IsString():
			ind = v.String()
		default:
			return exec.AsValue(fmt.Errorf("tojson: indent must be an integer or a string, not %s", v.String()))
		}
		o.indent = &ind
	}
	o.itemSep, o.keySep = ", ", ": "
	if o.indent != nil {
		o.itemSep = ","
	}
	if v := kw["separators"]; v != nil && !v.IsNil() {
		if !v.IsList() || v.Len() != 2 || !v.Index(0).IsString() || !v.Index(1).IsString() {
			return exec.AsValue(fmt.Errorf("tojson: separators must be a pair of strings, not %s", v.String()))
		}
		o.itemSep, o.keySep = v.Index(0).String(), v.Index(1).String()
	}
	var sb strings.Builder
	if err := o.dump(&sb, in.Interface(), 0); err != nil {
		return exec.AsValue(fmt.Errorf("tojson: %w", err))
	}
	return exec.AsSafeValue(sb.String())
}

// dump writes v as json.dumps writes the Python value it stands for.
func (o *pyDumpOptions) dump(sb *strings.Builder, v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value nested more than %d deep", maxJSONDepth)
	}
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
		return nil
	case *exec.Value:
		if x == nil {
			sb.WriteString("null")
			return nil
		}
		return o.dump(sb, x.Interface(), depth)
	case bool:
		sb.WriteString(strconv.FormatBool(x))
		return nil
	case string:
		writePyString(sb, x, o.ensureASCII)
		return nil
	case *big.Int:
		sb.WriteString(x.String())
		return nil
	case float64:
		sb.WriteString(pyfmt.JSONFloat(x))
		return nil
	case float32:
		sb.WriteString(pyfmt.JSONFloat(float64(x)))
		return nil
	case *exec.Dict:
		keys := make([]any, len(x.Pairs))
		vals := make([]any, len(x.Pairs))
		for i, p := range x.Pairs {
			keys[i], vals[i] = p.Key.Interface(), p.Value
		}
		return o.dumpObject(sb, keys, vals, depth)
	case exec.Dict:
		return o.dump(sb, &x, depth)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		sb.WriteString(strconv.FormatInt(rv.Int(), 10))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		sb.WriteString(strconv.FormatUint(rv.Uint(), 10))
		return nil
	case reflect.String: // gonja's own string types
		writePyString(sb, rv.String(), o.ensureASCII)
		return nil
	case reflect.Slice, reflect.Array:
		return o.dumpList(sb, rv, depth)
	case reflect.Map:
		// Go maps have no order; sorted keys keep the text stable.
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		ks := make([]any, len(keys))
		vs := make([]any, len(keys))
		for i, k := range keys {
			ks[i], vs[i] = k.Interface(), rv.MapIndex(k).Interface()
		}
		return o.dumpObject(sb, ks, vs, depth)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			sb.WriteString("null")
			return nil
		}
		return o.dump(sb, rv.Elem().Interface(), depth)
	}
	return fmt.Errorf("%T is not JSON serializable", v)
}

func (o *pyDumpOptions) newline(sb *strings.Builder, depth int) {
	if o.indent == nil {
		return
	}
	sb.WriteByte('\n')
	for range depth {
		sb.WriteString(*o.indent)
	}
}

func (o *pyDumpOptions) dumpList(sb *strings.Builder, rv reflect.Value, depth int) error {
	if rv.Len() == 0 {
		sb.WriteString("[]")
		return nil
	}
	sb.WriteByte('[')
	for i := range rv.Len() {
		if i > 0 {
			sb.WriteString(o.itemSep)
		}
		o.newline(sb, depth+1)
		if err := o.dump(sb, rv.Index(i).Interface(), depth+1); err != nil {
			return err
		}
	}
	o.newline(sb, depth)
	sb.WriteByte(']')
	return nil
}

func (o *pyDumpOptions) dumpObject(sb *strings.Builder, keys, vals []any, depth int) error {
	if len(keys) == 0 {
		sb.WriteString("{}")
		return nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		name, err := pyKey(k)
		if err != nil {
			return err
		}
		names[i] = name
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	if o.sortKeys {
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	}
	sb.WriteByte('{')
	for n, i := range order {
		if n > 0 {
			sb.WriteString(o.itemSep)
		}
		o.newline(sb, depth+1)
		writePyString(sb, names[i], o.ensureASCII)
		sb.WriteString(o.keySep)
		if err := o.dump(sb, vals[i], depth+1); err != nil {
			return err
		}
	}
	o.newline(sb, depth)
	sb.WriteByte('}')
	return nil
}

// pyKey is the text json.dumps writes for a dict key: strings as they
// are, numbers, booleans and None as their JSON.
func pyKey(k any) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case nil, *pyNoneType:
		return "null", nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return pyfmt.JSONFloat(x), nil
	case *big.Int:
		return x.String(), nil
	}
	rv := reflect.ValueOf(k)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	}
	return "", fmt.Errorf("keys must be str, int, float, bool or None, not %T", k)
}

// writePyString writes s as json.dumps does: quotes, backslashes and
// control characters escaped (\n, \r, \t, \b, \f by name, the rest as
// \u00XX); with ensureASCII every character past '~' too, as \uXXXX (a
// surrogate pair past U+FFFF).
func writePyString(sb *strings.Builder, s string, ensureASCII bool) {
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(sb, `\u%04x`, r)
			case ensureASCII && r > '~':
				if r > 0xFFFF {
					hi, lo := utf16.EncodeRune(r)
					fmt.Fprintf(sb, `\u%04x\u%04x`, hi, lo)
				} else {
					fmt.Fprintf(sb, `\u%04x`, r)
				}
			default:
				sb.WriteRune(r)
			}
		}
	}
	sb.WriteByte('"')
}
