package chat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func limited(t *testing.T, src string, l Limits) *Template {
	t.Helper()
	tpl, err := New("hostile.jinja", src, "", "")
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if tpl, err = tpl.WithLimits(l); err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestRenderBudget: templates are code from a downloaded model folder.
// Each of these grew to gigabytes or ran forever before renderings had a
// budget; each must now end quickly in an error that names the template
// and wraps ErrBudget.
func TestRenderBudget(t *testing.T) {
	small := Limits{MaxOutput: 1 << 20, MaxValue: 1 << 20, MaxSteps: 100_000, Timeout: 5 * time.Second, MaxMemory: 64 << 20}
	cases := []struct{ name, src, want string }{
		{"range", "{% for i in range(100000000) %}x{% endfor %}", "loop iterations"},
		{"nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop iterations"},
		{"nested loops over a list", "{% set l = range(1000)|list %}{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}{% endfor %}", "loop iterations"},
		{"output", "{% for i in range(20000) %}{{ 'y' * 100 }}{% endfor %}", "output longer"},
		{"string repeat", "{{ 'x' * 100000000 }}", "string * integer"},
		{"string repeat overflow", "{{ 'xx' * 9223372036854775807 }}", "string * integer"},
		{"doubling", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "~"},
		{"doubling with +", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "+"},
		{"list doubling", "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "loop iterations"},
		{"ljust", "{{ 'x'.ljust(1000000000) }}", "ljust"},
		{"format width", "{{ '{:>999999999}'.format(1) }}", "format"},
		{"center filter", "{{ 'x'|center(1000000000) }}", "center"},
		{"indent filter", "{{ ('a\n' * 1000)|indent(100000) }}", "indent"},
		{"join", "{% set s = 'x' * 1000000 %}{{ [s, s, s]|join }}", "join"},
		{"replace", "{{ ('x' * 1000)|replace('x', 'y' * 10000) }}", "replace"},
		{"macro fan-out", "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}", "macro calls"},
		{"macro buffer", "{% set s = 'x' * 1000000 %}{% macro m() %}{% for i in range(50000) %}{{ s }}{% endfor %}{% endmacro %}{{ m()|length }}", "heap grew"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := limited(t, c.src, small)
			start := time.Now()
			_, err := tpl.Render(conversation, false)
			if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hostile.jinja") {
				t.Fatalf("got %v, want an ErrBudget naming the template and %q", err, c.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestRenderTimeoutAndCancel: a rendering that stays within its steps ends
// at its timeout, and at once when its context is cancelled.
func TestRenderTimeoutAndCancel(t *testing.T) {
	loop := "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
	unlimited := Limits{MaxOutput: 1 << 20, MaxValue: 1 << 20, MaxSteps: 1 << 62, Timeout: 200 * time.Millisecond, MaxMemory: 1 << 40}
	tpl := limited(t, loop, unlimited)
	start := time.Now()
	_, err := tpl.Render(nil, false)
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "longer than 200ms") {
		t.Errorf("timeout: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}
	unlimited.Timeout = time.Hour
	tpl = limited(t, loop, unlimited)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = tpl.RenderContext(ctx, nil, false)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "hostile.jinja") {
		t.Errorf("cancel: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

// TestGuardedOperatorsKeepSemantics: the rewritten *, + and ~ give what
// gonja's own give, in expressions and in {% set %}.
func TestGuardedOperatorsKeepSemantics(t *testing.T) {
	src := "{{ 2 * 3 }}|{{ 'ab' * 2 }}|{{ 1.5 * 2 }}|{{ [1] + [2] }}|{{ 'a' ~ 1 }}|{{ 1 + 2 }}|{{ 'a' + 'b' }}|{{ 'a' * -1 }}|" +
		"{% set x = 'q' * 3 %}{{ x }}|{{ (messages|length) * 2 + 1 }}|{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}|" +
		"{{ (messages + [1, 'x'])|length }}|{{ ([1] + messages)[1].role }}|{% for m in messages + messages %}{{ m.role[0] }}{% endfor %}"
	tpl, err := New("ops", src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(conversation, false)
	want := "6|abab|3.0|[1, 2]|a1|3|ab||qqq|9|321|6|system|suausuau"
	if err != nil || got != want {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
}

// TestTemplateErrorsAreShort: a parse error has the real position or none
// (gonja said "Line 0 Col 0" and quoted the whole source), and a runaway
// recursion is one line, not a 7.6 KB chain.
func TestTemplateErrorsAreShort(t *testing.T) {
	for src, want := range map[string]string{
		"{{ x }":                   "'}}' expected here",
		"{% set %}":                "expected either a number",
		"a\n{% endif %}":           "line 2 col 4",
		"{% for m in messages %}x": "line 1 col 25",
	} {
		_, err := New("bad.jinja", src, "", "")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Line: 0") ||
			strings.Contains(err.Error(), "failed to parse template '") || !strings.Contains(err.Error(), "bad.jinja") {
			t.Errorf("%q: %v (want %q)", src, err, want)
		}
	}
	tpl, err := New("recursive.jinja", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Render(nil, false)
	if err == nil || len(err.Error()) > 200 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("recursion error (%d bytes): %.300v", len(fmtErr(err)), err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
