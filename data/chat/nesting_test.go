package chat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Before the nesting bounds, each template below overflowed the Go stack,
// which is fatal (recover() cannot catch it): the test binary died. Each
// must now end quickly in an error that names the template and wraps
// ErrNesting.

func wantNesting(t *testing.T, err error, want string, start time.Time) {
	t.Helper()
	if !errors.Is(err, ErrNesting) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "deep.jinja") {
		t.Fatalf("got %.400v, want an ErrNesting naming the template and %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestDeepSourceRefused: nesting that gonja's parser (or this package's
// rewriting of the parsed tree) recurses on is refused before it does.
func TestDeepSourceRefused(t *testing.T) {
	cases := []struct{ name, src, want string }{
		// 200 KB: the parser overflowed the stack after 10 s and 1 GB.
		{"100,000 parentheses", "{{ " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + " }}", "line 1: brackets and blocks nested deeper than 256"},
		// 7.2 MB: overflowed the stack in the parser.
		{"300,000 nested ifs", strings.Repeat("{% if true %}", 300000) + "x" + strings.Repeat("{% endif %}", 300000), "line 1: blocks nested deeper than 256"},
		{"lists, dicts, calls", "{{ " + strings.Repeat("[{'a': f(", 100) + "1" + strings.Repeat(")}]", 100) + " }}", "nested deeper than 256"},
		{"blocks and brackets together", strings.Repeat("{% for x in y %}", 200) + "{{ " + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100) + " }}" + strings.Repeat("{% endfor %}", 200), "brackets and blocks nested deeper than 256"},
		{"set blocks", strings.Repeat("{% set x %}", 300) + strings.Repeat("{% endset %}", 300), "blocks nested deeper than 256"},
		// A call as the target of a block set: its = is inside brackets.
		{"set blocks with a keyword argument", strings.Repeat("{% set f(a=1) %}", 300) + strings.Repeat("{% endset %}", 300), "blocks nested deeper than 256"},
		{"macros and calls", strings.Repeat("{% macro m() %}{% call m() %}", 200) + strings.Repeat("{% endcall %}{% endmacro %}", 200), "blocks nested deeper than 256"},
		{"the line of the deep part", "a\n{{ 1 }}\n{{ " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300) + " }}", "line 3: "},
		// Conditionals are rewritten into brackets (inlineif.go): a chain
		// nests three deeper per if. 1.2 MB: the rewriting ran for more
		// than a minute (it rescanned the rest of the chain at each if).
		{"conditional chain", "{{ 1" + strings.Repeat(" if x else 1", 100000) + " }}", "nested deeper than 256"},
		// Chains the parser builds in a loop nest in the tree; 1,000,000
		// terms overflowed the stack in rewriteOperators.
		{"operator chain", "{{ 1" + strings.Repeat(" + 1", 5000) + " }}", "nested deeper than 1024 levels"},
		{"attribute chain", "{{ x" + strings.Repeat(".a", 5000) + " }}", "nested deeper than 1024 levels"},
		{"filter chain", "{{ x" + strings.Repeat("|batch(1)", 2000) + " }}", "nested deeper than 1024 levels"},
		{"map calling map", "{{ [[1]]|map(" + strings.Repeat("'map', ", 2000) + "'string') }}", "nested deeper than 1024 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := New("deep.jinja", c.src, "", "")
			wantNesting(t, err, c.want, start)
		})
	}
}

// TestDeepTemplateFileRefused: Load names the file of a deep template.
func TestDeepTemplateFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chat_template.jinja")
	if err := os.WriteFile(path, []byte("{{ "+strings.Repeat("(", 100000)+"1"+strings.Repeat(")", 100000)+" }}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	var te *TemplateError
	if !errors.As(err, &te) || te.Name != path || !errors.Is(err, ErrNesting) {
		t.Errorf("got %v, want a TemplateError naming %s and wrapping ErrNesting", err, path)
	}
}

// TestNestingScanIgnoresText: brackets in strings, comments, raw blocks
// and text are not nesting; nesting up to the bound is accepted.
func TestNestingScanIgnoresText(t *testing.T) {
	deep := strings.Repeat("(", 1000)
	for _, c := range []struct{ src, want string }{
		{"{{ '" + deep + "' }}", deep},
		{"{{ \"" + deep + "\\\"\" }}", deep + "\""},
		{"{# " + deep + " #}x", "x"},
		{"{% raw %}{{ " + deep + " }}{% endraw %}", "{{ " + deep + " }}"},
		{deep, deep},
		{"{{ " + strings.Repeat("[", 256) + "1" + strings.Repeat("]", 256) + "|length }}", "1"},
		{strings.Repeat("{% if true %}", 128) + "{{ " + strings.Repeat("(", 128) + "1" + strings.Repeat(")", 128) + " }}" + strings.Repeat("{% endif %}", 128), "1"},
		{strings.Repeat("{% set x = 1 %}", 1000) + "{{ x }}", "1"},
	} {
		tpl, err := New("text", c.src, "", "")
		if err != nil {
			t.Errorf("%.60s...: %v", c.src, err)
			continue
		}
		if got, err := tpl.Render(nil, false); err != nil || got != c.want {
			t.Errorf("%.60s...: got %.60q %v", c.src, got, err)
		}
	}
}

// TestRealTemplatesNestShallow keeps the bounds' comments honest: the
// real templates here nest far below them.
func TestRealTemplatesNestShallow(t *testing.T) {
	tpls := []*Template{}
	for _, dir := range []string{"testdata/qwen3", "testdata/tiny-base"} {
		tpl, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		tpls = append(tpls, tpl)
	}
	for _, name := range BuiltinNames() {
		tpl, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		tpls = append(tpls, tpl)
	}
	for _, tpl := range tpls {
		nesting, err := checkNesting(rewriteInlineIf(tpl.Source()), jinjaConfig())
		if err != nil || nesting > maxNesting/16 {
			t.Errorf("%s: nests %d deep: %v", tpl.Name(), nesting, err)
		}
	}
}

// nestInLoop is a template that wraps ns.x in wrap ("{'a': %s}", where
// %s is ns.x) outer × inner times (inner sets in a loop body, so that a
// million levels take a thousand iterations), then renders use (where %s
// is ns.x).
func nestInLoop(outer, inner int, wrap, use string) string {
	set := "{% set ns.x = " + fmt.Sprintf(wrap, "ns.x") + " %}"
	return fmt.Sprintf("{%% set ns = namespace(x=1) %%}{%% for i in range(%d) %%}%s{%% endfor %%}", outer, strings.Repeat(set, inner)) +
		fmt.Sprintf(use, "ns.x")
}

// TestDeepValuesRefused: a value nested a million deep overflowed the
// stack in whatever recursed on it first (printing it, |tojson, |string,
// ==, in, sort, dictsort); the set that makes it too deep now fails.
func TestDeepValuesRefused(t *testing.T) {
	uses := []string{"{{ %s }}", "{{ %s|tojson }}", "{{ %s|string }}", "{{ %[1]s == %[1]s }}", "{{ 1 in [%[1]s] }}",
		"{{ [%s, 1]|sort }}", "{{ {'k': %s}|dictsort }}", "{{ %s|list }}", "{{ [%s]|length }}", "{{ %s.items() }}"}
	for _, use := range uses {
		t.Run(use, func(t *testing.T) {
			src := nestInLoop(1000, 1000, "{'a': %s}", use)
			tpl, err := New("deep.jinja", src, "", "")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = tpl.Render(nil, false)
			wantNesting(t, err, "line 1: set: a value nests lists, dicts and namespaces more than 512 deep", start)
		})
	}
	for _, wrap := range []string{"[%s]", "(%s, 1)", "namespace(a=%s)", "dict(a=%s)", "[%s]|batch(1)|first"} {
		t.Run(wrap, func(t *testing.T) {
			tpl, err := New("deep.jinja", nestInLoop(1000, 1000, wrap, "{{ %s }}"), "", "")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = tpl.Render(nil, false)
			wantNesting(t, err, "more than 512 deep", start)
		})
	}
	// The same without a namespace: a variable set again and again.
	tpl, err := New("deep.jinja", "{% set x = 1 %}"+strings.Repeat("{% set x = [x] %}", 1000)+"{{ x }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tpl.Render(nil, false)
	wantNesting(t, err, "set: a value nests", start)
	// A macro passing itself a deeper value at each call.
	tpl, err = New("deep.jinja", "{% macro f(x, n) %}{% if n > 0 %}{{ f([[[[[[[[[[x]]]]]]]]]], n - 1) }}{% else %}{{ x }}{% endif %}{% endmacro %}{{ f(1, 60) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = tpl.Render(nil, false)
	wantNesting(t, err, `macro "f"'s arguments: a value nests`, start)
}

// TestDeepValuesWithinBound: a value nested up to the bound works with
// everything that recurses on it.
func TestDeepValuesWithinBound(t *testing.T) {
	src := nestInLoop(1, 500, "{'a': %s}", "{{ (%[1]s|string)[:15] }}|{{ (%[1]s|tojson)[:11] }}|{{ %[1]s == %[1]s }}|{{ %[1]s in [1, %[1]s] }}|"+
		"{{ [%[1]s]|length }}|{{ {'k': %[1]s}.items()|list|length }}|{{ ([[%[1]s]]|batch(1)|list)|length }}|{{ [%[1]s, %[1]s]|unique|list|length }}")
	tpl, err := New("deep", src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(nil, false)
	if want := "{'a': {'a': {'a|{\"a\": {\"a\":|True|True|1|1|1|1"; err != nil || got != want {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
}

// TestSharedValuesRefused: a value that repeats another (x = [x, x])
// doubles what printing it writes at each step while staying small in
// memory; forty steps would print a terabyte. The step that makes it
// print as more than 4 × MaxOutput fails.
func TestSharedValuesRefused(t *testing.T) {
	small := Limits{MaxOutput: 1 << 20, MaxValue: 1 << 20, MaxSteps: 100_000, Timeout: 5 * time.Second, MaxMemory: 256 << 20}
	for _, c := range []struct{ name, src, want string }{
		// Walking the shared value without a memory of what it had seen
		// took 2^64 steps: the rendering hit its timeout and its goroutine
		// was left spinning.
		{"namespace doubling", "{% set ns = namespace(x='x') %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}", "a literal: over the rendering budget: a value that would print as more than 4194304 bytes"},
		{"variable doubling", "{% set x = 'x' %}" + strings.Repeat("{% set x = [x, x] %}", 64) + "{{ x }}", "would print as more than"},
		{"dict doubling", "{% set x = 'x' %}" + strings.Repeat("{% set x = dict(a=x, b=x) %}", 64) + "{{ x }}", "dict(): over the rendering budget"},
		{"+ doubling", "{% set s = 'x' * 100000 %}{{ [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] + [s] }}", "+: over the rendering budget"},
		{"literal", "{% set s = 'x' * 100000 %}{{ [" + strings.Repeat("s, ", 50) + "] }}", "a literal: over the rendering budget"},
		{"batch fill", "{% set s = 'x' * 100000 %}{{ [1]|batch(100, s) }}", "filter batch: over the rendering budget"},
		{"macro doubling", "{% macro f(x, n) %}{% if n > 0 %}{{ f([x, x], n - 1) }}{% endif %}{% endmacro %}{{ f('x', 60) }}", "would print as more than"},
		// gonja's slice allocated a billion columns at once; batch
		// filled a billion-item row (18 s and 1.5 GB).
		{"slice count", "{{ [1]|slice(1000000000) }}", "loop iterations"},
		{"batch count", "{{ [1]|batch(1000000000, 'x') }}", "loop iterations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tpl := limited(t, c.src, small)
			start := time.Now()
			_, err := tpl.Render(nil, false)
			if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %.300v, want an ErrBudget with %q", err, c.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestCyclicValuesRefused: a namespace made to contain itself through a
// dict literal (printed: a stack overflow) or through a message's dict.
func TestCyclicValuesRefused(t *testing.T) {
	for _, src := range []string{
		"{% set ns = namespace(a=1) %}{% set ns.a = {'x': ns} %}{{ ns }}",
		"{% set ns = namespace(a=1) %}{% set ns.a = {'x': [1, {'y': ns}]} %}{{ ns }}",
		"{% set a = namespace() %}{% set b = namespace(x={'a': a}) %}{% set a.y = [b] %}{{ a }}",
	} {
		tpl, err := New("deep.jinja", src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = tpl.Render(nil, false)
		wantNesting(t, err, "contains itself", start)
	}
}

// TestRecursiveCallsBounded: loop() in a recursive for and macros calling
// one another count against one bound of nested calls.
func TestRecursiveCallsBounded(t *testing.T) {
	// Ran until the 20 s timeout, and the abandoned goroutine recursed on.
	loop := "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}"
	var ring strings.Builder // m0 calls m1 ... m9 calls m0
	for i := range 10 {
		fmt.Fprintf(&ring, "{%% macro m%d() %%}{{ m%d() }}{%% endmacro %%}", i, (i+1)%10)
	}
	ring.WriteString("{{ m0() }}")
	for _, c := range []struct{ src, want string }{
		{loop, "line 1: loop(): macro and loop() calls nested deeper than 64"},
		{ring.String(), "calls nested deeper than 64"},
		{"{% macro f() %}{% for x in [1] recursive %}{{ f() }}{% endfor %}{% endmacro %}{{ f() }}", "calls nested deeper than 64"},
	} {
		tpl, err := New("deep.jinja", c.src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = tpl.RenderContext(context.Background(), nil, false)
		wantNesting(t, err, c.want, start)
		if len(err.Error()) > 200 {
			t.Errorf("error of %d bytes", len(err.Error()))
		}
	}
	// A recursive loop over a tree still works.
	tpl, err := New("tree", "{% for n in tree recursive %}{{ n.name }}{% if n.children %}({{ loop(n.children) }}){% endif %}{% endfor %}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tree := []any{map[string]any{"name": "a", "children": []any{map[string]any{"name": "b"}, map[string]any{"name": "c", "children": []any{map[string]any{"name": "d"}}}}}}
	got, err := tpl.RenderWith(context.Background(), nil, RenderOptions{Vars: map[string]any{"tree": tree}})
	if err != nil || got != "a(bc(d))" {
		t.Errorf("tree: %q %v", got, err)
	}
}

// TestValuesChangeOnlyInNamespaces: as in transformers (an immutable
// sandbox, and Jinja's own rule for attributes), lists and dicts cannot be
// changed, and attributes are set on namespaces only. Otherwise a value
// could be linked into another after both were measured.
func TestValuesChangeOnlyInNamespaces(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"{% set l = [1] %}{{ l.append(2) }}{{ l }}", "method append is not available"},
		{"{% set l = [1] %}{{ l.reverse() }}", "method reverse is not available"},
		{"{{ messages[0].update({'x': 1}) }}", "method update is not available"},
		{"{% set ns = namespace(a=1) %}{{ ns.update({'x': ns}) }}", "method update is not available"},
		{"{% set d = {'a': 1} %}{{ d.setdefault('b', 2) }}", "method setdefault is not available"},
		{"{% set m = messages[0] %}{% set m.role = 'x' %}", "cannot assign attribute on non-namespace object"},
		{"{% set m = messages[0] %}{% set m['role'] = 'x' %}", "cannot assign attribute on non-namespace object"},
	} {
		tpl, err := New("immutable", c.src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.Render(conversation, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.src, err, c.want)
		}
	}
	tpl, err := New("ns", "{% set ns = namespace(d={}, l=[]) %}{% set ns.l = ns.l + [1] %}{% set ns['n'] = 2 %}{{ ns.l }}{{ ns.n }}{{ {'a': 1}.items()|list }}{{ [2, 1].copy() }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(conversation, false); err != nil || got != "[1]2[['a', 1]][2, 1]" {
		t.Errorf("namespaces: %q %v", got, err)
	}
}

// TestReservedNames: the functions and variables the guards rely on
// cannot be replaced. Setting the namespace registry to none turned the
// check for cyclic namespaces off, and printing one overflowed the stack.
func TestReservedNames(t *testing.T) {
	for _, src := range []string{
		"{% set __ftune_namespaces = none %}{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}",
		"{% set __ftune_mul = 1 %}",
		"{{ __ftune_budget }}",
	} {
		if _, err := New("reserved", src, "", ""); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("%s: %v", src, err)
		}
	}
}
