package chat

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	gonjabuiltins "github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Python's str methods where gonja's differ from them, as chat templates
// call them: gonja's split, rsplit, strip, lstrip and rstrip take a
// separator or a set of characters that defaults to " " (or refuse the
// None that Python's default is: "32 is not a string" for SmolLM3's
// .split()), its endswith holds for '' whatever the suffix, and its
// methods return gonja's own string type, which tojson refused ("'a'.upper()
// | tojson"). Indexes count characters, as Python's do.

// pySpace is str.isspace for one character: Go's unicode.IsSpace and the
// separators U+001C..U+001F, which Python counts as whitespace too.
func pySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyArgs gives a method's arguments by position, the keyword ones where
// Python allows keywords (split's sep and maxsplit), nil where absent.
func pyArgs(method string, params *exec.VarArgs, names []string, keywords bool) ([]*exec.Value, error) {
	if len(params.Args) > len(names) {
		return nil, fmt.Errorf("%s() takes at most %d arguments (%d given)", method, len(names), len(params.Args))
	}
	out := make([]*exec.Value, len(names))
	copy(out, params.Args)
	for k, v := range params.KwArgs {
		i := slices.Index(names, k)
		if !keywords || i < 0 {
			return nil, fmt.Errorf("%s() got an unexpected keyword argument '%s'", method, k)
		}
		if out[i] != nil {
			return nil, fmt.Errorf("%s() got multiple values for argument '%s'", method, k)
		}
		out[i] = v
	}
	return out, nil
}

// absent says whether an argument was left out or given as None.
func absent(v *exec.Value) bool { return v == nil || v.IsNil() }

// sliceIndex is a start or end argument: None for its default, an
// integer, else Python's TypeError.
func sliceIndex(v *exec.Value, def int) (int, error) {
	if absent(v) {
		return def, nil
	}
	if v.IsBool() {
		if v.Bool() {
			return 1, nil
		}
		return 0, nil
	}
	if !v.IsInteger() {
		return 0, fmt.Errorf("slice indices must be integers or None, not %s", v.String())
	}
	return v.Integer(), nil
}

// adjustIndices is CPython's ADJUST_INDICES: negative indexes count from
// the end, end is clamped to the length (start is not).
func adjustIndices(start, end, n int) (int, int) {
	if end > n {
		end = n
	} else if end < 0 {
		end = max(end+n, 0)
	}
	if start < 0 {
		start = max(start+n, 0)
	}
	return start, end
}

// pyTailMatch is str.startswith (suffix false) or str.endswith (true):
// one string or a tuple of them, from start to end.
func pyTailMatch(method string, suffix bool) exec.Method[string] {
	return func(self string, _ *exec.Value, params *exec.VarArgs) (any, error) {
		args, err := pyArgs(method, params, []string{"prefix", "start", "end"}, false)
		if err != nil {
			return nil, err
		}
		if args[0] == nil {
			return nil, fmt.Errorf("%s() takes at least 1 argument (0 given)", method)
		}
		var subs []string
		switch {
		case args[0].IsString():
			subs = []string{args[0].String()}
		case args[0].IsList():
			for i := range args[0].Len() {
				item := args[0].Index(i)
				if !item.IsString() {
					return nil, fmt.Errorf("tuple for %s must only contain str, not %s", method, item.String())
				}
				subs = append(subs, item.String())
			}
		default:
			return nil, fmt.Errorf("%s first arg must be str or a tuple of str, not %s", method, args[0].String())
		}
		r := []rune(self)
		start, err := sliceIndex(args[1], 0)
		if err != nil {
			return nil, err
		}
		end, err := sliceIndex(args[2], len(r))
		if err != nil {
			return nil, err
		}
		start, end = adjustIndices(start, end, len(r))
		for _, s := range subs {
			sub := []rune(s)
			last := end - len(sub)
			if last < start {
				continue
			}
			at := start
			if suffix {
				at = last
			}
			if slices.Equal(r[at:at+len(sub)], sub) {
				return true, nil
			}
		}
		return false, nil
	}
}

// pySearch is str.find, rfind, index or rindex (right: the last match;
// raise: ValueError where find gives -1) and str.count: gonja's counted
// bytes (3 for 'héllo'.find('l'), where Python's 2, so a template's
// content[content.find('</think>') + 8:] cut UTF-8 text at the wrong
// character), its count counted the string itself, and it had no index.
// Indexes are characters, start and end as a slice's (negative from the
// end, None for the default).
func pySearch(method string, right, raise, count bool) exec.Method[string] {
	return func(self string, _ *exec.Value, params *exec.VarArgs) (any, error) {
		args, err := pyArgs(method, params, []string{"sub", "start", "end"}, false)
		if err != nil {
			return nil, err
		}
		if args[0] == nil {
			return nil, fmt.Errorf("%s() takes at least 1 argument (0 given)", method)
		}
		if !args[0].IsString() {
			return nil, fmt.Errorf("must be str, not %s", pyType(args[0]))
		}
		sub := args[0].String()
		n := utf8.RuneCountInString(self)
		start, err := sliceIndex(args[1], 0)
		if err != nil {
			return nil, err
		}
		end, err := sliceIndex(args[2], n)
		if err != nil {
			return nil, err
		}
		start, end = adjustIndices(start, end, n)
		subLen := utf8.RuneCountInString(sub)
		if end-start < subLen {
			// CPython's any_find_slice and count: nothing fits (a start
			// past the end finds no '' either).
			if count {
				return 0, nil
			}
			if raise {
				return nil, errors.New("substring not found")
			}
			return -1, nil
		}
		// UTF-8 is self-synchronizing: a match of sub's bytes starts on a
		// character, so the byte search counts as Python's does.
		lo, hi := runeOffset(self, start), runeOffset(self, end)
		window := self[lo:hi]
		if count {
			return strings.Count(window, sub), nil // '' counts len + 1, as Python's
		}
		at := strings.Index(window, sub)
		if right {
			at = strings.LastIndex(window, sub)
		}
		if at < 0 {
			if raise {
				return nil, errors.New("substring not found")
			}
			return -1, nil
		}
		return start + utf8.RuneCountInString(window[:at]), nil
	}
}

// runeOffset is the byte offset of character i of s (len(s) past the
// last).
func runeOffset(s string, i int) int {
	for off := range s {
		if i == 0 {
			return off
		}
		i--
	}
	return len(s)
}

// pyStripChars is str.strip, lstrip or rstrip of s: chars a string of
// the characters to remove, or absent for whitespace.
func pyStripChars(s string, chars *exec.Value, left, right bool) (string, error) {
	cut := pySpace
	if !absent(chars) {
		if !chars.IsString() {
			return "", fmt.Errorf("strip arg must be None or str, not %s", chars.String())
		}
		set := chars.String()
		cut = func(r rune) bool { return strings.ContainsRune(set, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, cut)
	}
	if right {
		s = strings.TrimRightFunc(s, cut)
	}
	return s, nil
}

func pyStrip(method string, left, right bool) exec.Method[string] {
	return func(self string, _ *exec.Value, params *exec.VarArgs) (any, error) {
		args, err := pyArgs(method, params, []string{"chars"}, false)
		if err != nil {
			return nil, err
		}
		return pyStripChars(self, args[0], left, right)
	}
}

// pySplit is str.split (right false) or str.rsplit (true): by sep, or
// by runs of whitespace (no empty strings) when sep is None; at most
// maxsplit splits when it is not negative.
func pySplit(method string, right bool) exec.Method[string] {
	return func(self string, _ *exec.Value, params *exec.VarArgs) (any, error) {
		args, err := pyArgs(method, params, []string{"sep", "maxsplit"}, true)
		if err != nil {
			return nil, err
		}
		maxsplit := -1
		if args[1] != nil {
			if !args[1].IsInteger() {
				return nil, fmt.Errorf("'%s' object cannot be interpreted as an integer", args[1].String())
			}
			maxsplit = args[1].Integer()
		}
		var parts []string
		switch {
		case absent(args[0]):
			parts = splitWhitespace(self, maxsplit, right)
		case !args[0].IsString():
			return nil, fmt.Errorf("must be str or None, not %s", args[0].String())
		case args[0].String() == "":
			return nil, errors.New("empty separator")
		default:
			parts = splitSep(self, args[0].String(), maxsplit, right)
		}
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	}
}

func splitSep(s, sep string, maxsplit int, right bool) []string {
	if maxsplit < 0 {
		return strings.Split(s, sep)
	}
	if !right {
		return strings.SplitN(s, sep, maxsplit+1)
	}
	var rev []string
	for len(rev) < maxsplit {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		rev = append(rev, s[i+len(sep):])
		s = s[:i]
	}
	rev = append(rev, s)
	slices.Reverse(rev)
	return rev
}

// splitWhitespace is split() and rsplit() without sep: the text left
// after maxsplit splits keeps its inner and far-side whitespace.
func splitWhitespace(s string, maxsplit int, right bool) []string {
	if maxsplit < 0 {
		return strings.FieldsFunc(s, pySpace)
	}
	var out []string
	if !right {
		for {
			s = strings.TrimLeftFunc(s, pySpace)
			if s == "" {
				return out
			}
			if len(out) == maxsplit {
				return append(out, s)
			}
			i := strings.IndexFunc(s, pySpace)
			if i < 0 {
				return append(out, s)
			}
			out = append(out, s[:i])
			s = s[i:]
		}
	}
	for {
		s = strings.TrimRightFunc(s, pySpace)
		if s == "" {
			break
		}
		if len(out) == maxsplit {
			out = append(out, s)
			break
		}
		i := strings.LastIndexFunc(s, pySpace)
		if i < 0 {
			out = append(out, s)
			break
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		out = append(out, s[i+size:])
		s = s[:i]
	}
	slices.Reverse(out)
	return out
}

// pyStrMethods are the str methods replaced by Python's.
var pyStrMethods = map[string]exec.Method[string]{
	"startswith": pyTailMatch("startswith", false),
	"endswith":   pyTailMatch("endswith", true),
	"split":      pySplit("split", false),
	"rsplit":     pySplit("rsplit", true),
	"strip":      pyStrip("strip", true, true),
	"lstrip":     pyStrip("lstrip", true, false),
	"rstrip":     pyStrip("rstrip", false, true),
	"find":       pySearch("find", false, false, false),
	"rfind":      pySearch("rfind", true, false, false),
	"index":      pySearch("index", false, true, false),
	"rindex":     pySearch("rindex", true, true, false),
	"count":      pySearch("count", false, false, true),
}

// plainStrings gives what a gonja str method returned with its string
// type (pystring.PyString) made Go's string, in lists too: filters and
// tojson know string, not gonja's type.
func plainStrings(v any) any {
	rv := reflect.ValueOf(v)
	switch {
	case !rv.IsValid():
		return v
	case rv.Kind() == reflect.String && rv.Type() != reflect.TypeFor[string]():
		return rv.String()
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.String && rv.Type().Elem() != reflect.TypeFor[string]():
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).String()
		}
		return out
	}
	return v
}

// softStr is Jinja's soft_str for the string filters: str(v), undefined
// "" (pyprint.go).
func softStr(v *exec.Value) string { return pyStr(v) }

// pyTrim is Jinja's trim: soft_str(value).strip(chars). gonja's refused
// anything but a string (an absent description in Hermes' templates).
func pyTrim(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var chars *exec.Value
	if err := params.Take(exec.KeywordArgument("chars", exec.AsValue(nil), func(v *exec.Value) error { chars = v; return nil })); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	s, err := pyStripChars(softStr(in), chars, true, true)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(s)
}

// pyDictSort is Jinja's dictsort(case_sensitive=False, by='key',
// reverse=False): the (key, value) pairs of a dict, sorted stably by key
// or value, strings compared lowercased unless case_sensitive. gonja's
// saw nothing in a dict literal or a JSON object (*exec.Dict) and sorted
// Go maps by gonja's own order. A Go map (a message) is taken in sorted
// key order, for the ties case-insensitive sorting leaves.
func pyDictSort(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var caseSensitive, reverse bool
	by := "key"
	truth := func(out *bool) exec.ArgumentTransmuter {
		return func(v *exec.Value) error { *out = v.IsTrue(); return nil }
	}
	if err := params.Take(
		exec.KeywordArgument("case_sensitive", exec.AsValue(false), truth(&caseSensitive)),
		exec.KeywordArgument("by", exec.AsValue("key"), exec.StringArgument(&by)),
		exec.KeywordArgument("reverse", exec.AsValue(false), truth(&reverse)),
	); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	pos := 0
	switch by {
	case "key":
	case "value":
		pos = 1
	default:
		return exec.AsValue(errors.New("You can only sort by either 'key' or 'value'"))
	}
	var pairs [][2]*exec.Value
	switch d := in.Interface().(type) {
	case *exec.Dict:
		for _, p := range d.Pairs {
			pairs = append(pairs, [2]*exec.Value{p.Key, p.Value})
		}
	default:
		rv := reflect.ValueOf(in.Interface())
		if !in.IsDict() || rv.Kind() != reflect.Map {
			return exec.AsValue(fmt.Errorf("dictsort: %s is not a dict", in.String()))
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		for _, k := range keys {
			pairs = append(pairs, [2]*exec.Value{exec.ToValue(k), exec.ToValue(rv.MapIndex(k))})
		}
	}
	sortKey := func(v *exec.Value) *exec.Value {
		if !caseSensitive && v.IsString() {
			return exec.AsValue(strings.ToLower(v.String()))
		}
		return v
	}
	var cmpErr error
	slices.SortStableFunc(pairs, func(a, b [2]*exec.Value) int {
		c, err := pyCompare(sortKey(a[pos]), sortKey(b[pos]))
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		if reverse {
			return -c
		}
		return c
	})
	if cmpErr != nil {
		return exec.AsValue(fmt.Errorf("dictsort: %w", cmpErr))
	}
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = []any{p[0].Interface(), p[1].Interface()}
	}
	return exec.AsValue(out)
}

// pyCompare orders two values as Python's < does: numbers (bools
// among them) by value, strings by code point, lists item by item; other
// mixes are Python's TypeError.
func pyCompare(a, b *exec.Value) (int, error) {
	num := func(v *exec.Value) (*big.Float, bool) {
		switch x := v.Interface().(type) {
		case *big.Int:
			return new(big.Float).SetInt(x), true
		case bool:
			if x {
				return big.NewFloat(1), true
			}
			return big.NewFloat(0), true
		}
		if v.IsInteger() {
			return new(big.Float).SetInt64(int64(v.Integer())), true
		}
		if v.IsFloat() {
			return big.NewFloat(v.Float()), true
		}
		return nil, false
	}
	if a.IsFloat() && math.IsNaN(a.Float()) || b.IsFloat() && math.IsNaN(b.Float()) {
		return 0, nil // NaN is neither less nor greater than anything
	}
	if x, ok := num(a); ok {
		if y, ok := num(b); ok {
			return x.Cmp(y), nil
		}
	}
	switch {
	case a.IsString() && b.IsString():
		return strings.Compare(a.String(), b.String()), nil
	case a.IsList() && b.IsList():
		for i := range min(a.Len(), b.Len()) {
			c, err := pyCompare(a.Index(i), b.Index(i))
			if err != nil || c != 0 {
				return c, err
			}
		}
		return a.Len() - b.Len(), nil
	}
	return 0, fmt.Errorf("'<' not supported between %s and %s", a.String(), b.String())
}

// pyTests is gonja's tests with number, integer and iterable as Jinja's:
// true of Python's integers past 64 bits too (*big.Int, as decodeJSON
// gives them; Kimi's template typed such an argument an array), number of
// a bool too (a bool is an int in Python, but not for integer), iterable
// of Undefined too.
func pyTests() (*exec.TestSet, error) {
	ts := exec.NewTestSet(map[string]exec.TestFunction{}).Update(gonjabuiltins.Tests)
	isBig := func(in *exec.Value) bool { _, ok := in.Interface().(*big.Int); return ok }
	if err := ts.Replace("number", func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		return in.IsNumber() || in.IsBool() || isBig(in), nil
	}); err != nil {
		return nil, err
	}
	if err := ts.Replace("integer", func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		return in.IsInteger() || isBig(in), nil
	}); err != nil {
		return nil, err
	}
	// Jinja's iterable is iter() succeeding, which it does on Undefined
	// (an empty iteration) but not on None: Hermes' tool template takes an
	// array parameter's schema without a type for a union of no types,
	// list[Union[]], where gonja's test made it list[Any].
	if err := ts.Replace("iterable", func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		undefined := (in.IsNil() || in.IsError()) && !isPyNone(in)
		return in.IsIterable() || undefined, nil
	}); err != nil {
		return nil, err
	}
	return ts, nil
}
