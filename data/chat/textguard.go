package chat

import (
	"fmt"
	"regexp"
	"strings"

	gonjabuiltins "github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Filters and string methods that can turn a small input into a large
// string take a width, a count or a list: their arguments are checked
// against MaxValue before they run and their results after.

// sizeEstimate says how long a call's result can get, before it runs.
type sizeEstimate func(in string, inValue *exec.Value, params *exec.VarArgs) int

// widthArgs: every integer argument is a width (or indent, or count) the
// result can grow by; more than MaxValue is refused.
func widthArgs(in string, _ *exec.Value, params *exec.VarArgs) int {
	n := len(in)
	for _, a := range params.Args {
		if a.IsInteger() {
			n = max(n, a.Integer())
		}
	}
	for _, a := range params.KwArgs {
		if a.IsInteger() {
			n = max(n, a.Integer())
		}
	}
	return n
}

// indentArgs: indent(width) adds width bytes per line.
func indentArgs(in string, v *exec.Value, params *exec.VarArgs) int {
	lines := strings.Count(in, "\n") + 1
	w := widthArgs("", v, params)
	if w > 0 && lines > (1<<62)/w {
		return -1
	}
	return len(in) + lines*w
}

// joinArgs: the items and a separator between each two.
func joinArgs(sepFirst bool) sizeEstimate {
	return func(in string, v *exec.Value, params *exec.VarArgs) int {
		list, sep := v, ""
		if sepFirst { // ", ".join(list)
			sep = in
			if len(params.Args) == 0 {
				return 0
			}
			list = params.Args[0]
		} else if len(params.Args) > 0 { // list|join(", ")
			sep = params.Args[0].String()
		}
		n := 0
		list.Iterate(func(idx, _ int, key, _ *exec.Value) bool {
			n += len(key.String()) + len(sep)
			return n >= 0 && n < 1<<62
		}, func() {})
		return n
	}
}

// replaceArgs: each occurrence of old can become new.
func replaceArgs(in string, _ *exec.Value, params *exec.VarArgs) int {
	if len(params.Args) < 2 {
		return len(in)
	}
	old, repl := params.Args[0].String(), params.Args[1].String()
	count := strings.Count(in, old)
	if len(repl) > 0 && count > (1<<62)/len(repl) {
		return -1
	}
	return len(in) + count*len(repl)
}

// bigWidth finds a width in a format string (Python's {:>999999999} or
// printf's %999999999s): more than seven digits in a row.
var bigWidth = regexp.MustCompile(`[0-9]{8,}`)

func formatArgs(in string, v *exec.Value, params *exec.VarArgs) int {
	if bigWidth.MatchString(in) {
		return -1
	}
	return widthArgs(in, v, params)
}

// guardedFilters: gonja's filters with these checked.
var guardedFilters = map[string]sizeEstimate{
	"center": widthArgs, "indent": indentArgs, "wordwrap": widthArgs, "truncate": widthArgs,
	"tojson": widthArgs, "format": formatArgs, "join": joinArgs(false), "replace": replaceArgs,
}

// guardedStrMethods: gonja's str methods with these checked.
var guardedStrMethods = map[string]sizeEstimate{
	"center": widthArgs, "ljust": widthArgs, "rjust": widthArgs, "zfill": widthArgs,
	"expandtabs": widthArgs, "format": formatArgs, "format_map": formatArgs,
	"join": joinArgs(true), "replace": replaceArgs,
}

// tojson's indent multiplies with the number of lines: a small bound.
const maxJSONIndent = 1024

func guardFilters() (*exec.FilterSet, error) {
	fs := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(gonjabuiltins.Filters)
	// gonja's format is Go's Sprintf; Jinja's is Python's s % args.
	if err := fs.Replace("format", formatFilter); err != nil {
		return nil, err
	}
	// gonja's tojson is Go's encoding/json; transformers' is json.dumps.
	if err := fs.Replace("tojson", pyToJSON); err != nil {
		return nil, err
	}
	// gonja's trim refuses all but strings, its dictsort sees nothing in
	// a dict that keeps its order (pystr.go).
	if err := fs.Replace("trim", pyTrim); err != nil {
		return nil, err
	}
	if err := fs.Replace("dictsort", pyDictSort); err != nil {
		return nil, err
	}
	// Jinja's string filters take soft_str(x): None is "None", a list
	// its repr (pyprint.go); gonja's took gonja's string of it.
	for _, name := range []string{"lower", "upper", "capitalize", "title", "replace"} {
		orig, ok := fs.Get(name)
		if !ok {
			return nil, fmt.Errorf("gonja has no %s filter", name)
		}
		if err := fs.Replace(name, func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			if !in.IsString() && !in.IsError() {
				in = exec.AsValue(softStr(in))
			}
			return orig(e, in, params)
		}); err != nil {
			return nil, err
		}
	}
	// string and join print as Python prints (pyprint.go).
	if err := fs.Replace("string", pyStringFilter); err != nil {
		return nil, err
	}
	join, _ := fs.Get("join")
	if err := fs.Replace("join", func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if _, byAttribute := params.KwArgs["attribute"]; byAttribute {
			return join(e, in, params)
		}
		return join(e, strItems(in), params)
	}); err != nil {
		return nil, err
	}
	// gonja's items sees nothing in a dict that keeps its order.
	items, _ := fs.Get("items")
	if err := fs.Replace("items", func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if d, ok := in.Interface().(*exec.Dict); ok && len(params.Args) == 0 && len(params.KwArgs) == 0 {
			return exec.AsValue(orderedDictView(d, "items"))
		}
		return items(e, in, params)
	}); err != nil {
		return nil, err
	}
	for name, estimate := range guardedFilters {
		orig, ok := fs.Get(name)
		if !ok {
			return nil, fmt.Errorf("gonja has no %s filter", name)
		}
		what := "filter " + name
		if err := fs.Replace(name, func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			b := budgetOf(e.Environment.Context)
			if name == "tojson" && widthArgs("", in, params) > maxJSONIndent {
				return exec.AsValue(b.fail(fmt.Errorf("%w: tojson indent over %d", ErrBudget, maxJSONIndent)))
			}
			if err := b.value(estimate(in.String(), in, params), what); err != nil {
				return exec.AsValue(err)
			}
			out := orig(e, in, params)
			if out.IsString() {
				if err := b.value(len(out.String()), what); err != nil {
					return exec.AsValue(err)
				}
			}
			return out
		}); err != nil {
			return nil, err
		}
	}
	// batch and slice make as many items as their count, each row can
	// repeat fill_with, and slice allocates its count at once: the count
	// is charged as steps before they run, and what they built measured.
	for _, name := range []string{"batch", "slice"} {
		orig, ok := fs.Get(name)
		if !ok {
			return nil, fmt.Errorf("gonja has no %s filter", name)
		}
		what := "filter " + name
		if err := fs.Replace(name, func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			b := budgetOf(e.Environment.Context)
			n := in.Len()
			if len(params.Args) > 0 && params.Args[0].IsInteger() {
				n += max(params.Args[0].Integer(), 0)
			}
			if err := b.step(n); err != nil {
				return exec.AsValue(err)
			}
			out := orig(e, in, params)
			if !out.IsError() {
				if err := b.checkValues(what, out); err != nil {
					return exec.AsValue(err)
				}
			}
			return out
		}); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// guardStrMethods gives a copy of gonja's methods whose str methods are
// checked against limits (methods are not handed the rendering's context,
// so they see the template's limits).
func guardStrMethods(limits Limits) (exec.Methods, error) {
	m := gonjabuiltins.Methods
	str := map[string]exec.Method[string]{}
	for _, name := range strMethodNames {
		orig, ok := m.Str.Get(name)
		if !ok {
			return exec.Methods{}, fmt.Errorf("gonja has no str method %s", name)
		}
		if name == "replace" {
			orig = strReplace
		}
		if py, ok := pyStrMethods[name]; ok {
			orig = py
		}
		orig = plainResult(orig)
		estimate, guarded := guardedStrMethods[name]
		if !guarded {
			str[name] = orig
			continue
		}
		what := "method " + name
		str[name] = func(self string, v *exec.Value, params *exec.VarArgs) (any, error) {
			if n := estimate(self, v, params); n < 0 || n > limits.MaxValue {
				return nil, fmt.Errorf("%w: %s would build a string of more than %d bytes", ErrBudget, what, limits.MaxValue)
			}
			out, err := orig(self, v, params)
			if s, ok := out.(string); ok && len(s) > limits.MaxValue {
				return nil, fmt.Errorf("%w: %s built a string of more than %d bytes", ErrBudget, what, limits.MaxValue)
			}
			return out, err
		}
	}
	for name, py := range pyStrMethods {
		if _, ok := str[name]; !ok { // Python's that gonja lacks (index, rindex)
			str[name] = plainResult(py)
		}
	}
	m.Str = exec.NewMethodSet(str)
	return m, nil
}

// plainResult is m with its result's strings Go's own (plainStrings).
func plainResult(m exec.Method[string]) exec.Method[string] {
	return func(self string, v *exec.Value, params *exec.VarArgs) (any, error) {
		out, err := m(self, v, params)
		return plainStrings(out), err
	}
}

// strReplace is Python's str.replace: gonja's requires the count, which
// Python's leaves optional (SmolLM3's template calls .replace(old, new)),
// and leaves a string unchanged for an empty old, where Python inserts new
// around each character (as strings.Replace does).
func strReplace(self string, _ *exec.Value, params *exec.VarArgs) (any, error) {
	var old, repl string
	var count int
	if err := params.Take(
		exec.PositionalArgument("old", nil, exec.StringArgument(&old)),
		exec.PositionalArgument("new", nil, exec.StringArgument(&repl)),
		exec.PositionalArgument("count", exec.AsValue(-1), exec.IntArgument(&count)),
	); err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	return strings.Replace(self, old, repl, count), nil
}

// strMethodNames are gonja v2.9.1's str methods: its set cannot be
// listed, so a gonja upgrade must check this list (a method missing here
// is "unknown method" in templates, not unguarded).
var strMethodNames = strings.Fields(`capitalize capwords casefold center count encode endswith expandtabs
	find format format_map isalnum isalpha isascii isdecimal isdigit islower isnumeric isprintable
	isspace istitle isupper join ljust lower lstrip partition removeprefix removesuffix replace rfind
	rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title upper zfill`)
