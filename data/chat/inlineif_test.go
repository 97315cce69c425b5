package chat

import (
	"strings"
	"testing"
)

// TestInlineIf renders conditional expressions where gonja alone cannot
// parse them (inside parentheses, call arguments, lists, dicts and set
// statements) and checks the results are Jinja's. The Gemma 3 case is its
// real template's line, which failed with "Unbalanced parenthesis".
func TestInlineIf(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"gemma3", "{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' + ('P ' if loop.first else \"\") }}{{ m['content'] }}\n{% endfor %}",
			"<start_of_turn>user\nP hi\n<start_of_turn>assistant\nyo\n"},
		{"set", "{% set x = 'a' if messages|length > 5 else 'b' %}{{ x }}", "b"},
		{"set-namespace", "{% set ns = namespace(v='') %}{% set ns.v = ('yes' if add_generation_prompt else 'no') %}{{ ns.v }}", "no"},
		{"nested-right", "{{ ('one' if messages|length == 1 else 'two' if messages|length == 2 else 'many') }}", "two"},
		{"call-argument", "{{ '-'.join(['a' if true else 'b', 'c']) }}", "a-c"},
		{"dict-value", "{% set d = {'k': 'v' if false else 'w'} %}{{ d['k'] }}", "w"},
		{"lazy", "{{ ('ok' if true else raise_exception('evaluated the other branch')) }}", "ok"},
		{"lazy-false", "{{ (raise_exception('evaluated the other branch') if false else 'ok') }}", "ok"},
		{"falsy-branch", "{{ ('' if true else 'no') }}|{{ (0 if true else 1) }}", "|0"},
		{"no-else", "[{{ ('x' if false) }}]", "[]"},
		{"filters", "{{ (' a ' | trim if true else 'b') }}|{{ ('a' if false else ' b ' | trim) }}", "a|b"},
		{"if-tag", "{% if ('a' if true else '') %}yes{% endif %}", "yes"},
		{"for-filter", "{% for m in messages if m['role'] == 'user' %}{{ m['content'] }}{% endfor %}", "hi"},
		{"string-untouched", "{{ 'x if y else z' }}{{ \"(a if b else c)\" }}", "x if y else z(a if b else c)"},
		{"raw-untouched", "{% raw %}{{ (a if b else c) }}{% endraw %}", "{{ (a if b else c) }}"},
		{"comment", "{# (a if b else c) #}{{ ('k' if true else 'l') }}", "k"},
		{"whitespace-control", "a  {{- ('b' if true else 'c') -}}  d", "abd"},
		{"keyword-argument", "{% set ns = namespace(v='a' if false else 'b', w=1) %}{{ ns.v }}{{ ns.w }}", "b1"},
		{"comparison-argument", "{{ ('x' if messages|length == 2 else 'y') }}", "x"},
		{"top-level", "{{ 'p' if false else 'q' }}", "q"},
	}
	msgs := []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "yo"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := New(c.name, c.src, "", "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := tpl.Render(msgs, false)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if tpl.Source() != c.src {
				t.Errorf("Source() is the rewritten template %q", tpl.Source())
			}
		})
	}
}

// TestInlineIfKeepsLines checks the rewrite keeps the line of an error
// after a rewritten expression.
func TestInlineIfKeepsLines(t *testing.T) {
	src := "{{ ('a' if true\n else 'b') }}\n{{ (1 + ) }}"
	_, err := New("lines", src, "", "")
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want a parse error on line 3, got %v", err)
	}
}

// FuzzInlineIf: the rewrite never panics, keeps every line break (parse
// errors keep their lines), and leaves a template without conditional
// expressions as it is.
func FuzzInlineIf(f *testing.F) {
	for _, s := range []string{"{{ (a if b else c) }}", "{% set x = a if b %}", "{{ 'x' if", "{% for x in y if z %}{% endfor %}",
		"{{ f(k=a if b else c, d) }}", "{# (a if b) #}{% raw %}{{ (a if b) }}{% endraw %}", "{{ \"}}\" ~ (a if b else '}}') }}", "{{ (", "{%", "{#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out := rewriteInlineIf(src)
		if strings.Count(out, "\n") != strings.Count(src, "\n") {
			t.Fatalf("%q -> %q: line breaks changed", src, out)
		}
		if !strings.Contains(src, "if") && out != src {
			t.Fatalf("%q -> %q without a conditional", src, out)
		}
	})
}
