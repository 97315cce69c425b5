package chat

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// TestPercentFormatting: % with a string on the left is Python's printf
// formatting, as in Jinja, and numbers take Python's modulo. Before, gonja
// took both sides as integers: "Step %d" % 3 rendered 0 and "a %s b" %
// "hi" a recovered Go panic. The expected texts are Jinja 3.1's
// (ImmutableSandboxedEnvironment, as transformers renders), except that a
// missing value prints as gonja prints it (Jinja writes None).
func TestPercentFormatting(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{{ "Step %d" % 3 }}`, "Step 3"},
		{`{{ "a %s b" % "hi" }}`, "a hi b"},
		{`{{ '%02d' % 7 }}`, "07"},
		{`{{ "%s-%s" % (1, "x") }}`, "1-x"},
		{`{{ "%s" % ("x",) }}`, "x"},
		{`{{ "%5.2f|%-6s|%+d|% d" % (3.14159, "ab", 5, 7) }}`, " 3.14|ab    |+5| 7"},
		{`{{ "%x %X %#x %o %#o %#06x" % (255, 255, 255, 8, 8, 255) }}`, "ff FF 0xff 10 0o10 0x00ff"},
		{`{{ "%e|%g|%g|%.3g|%G" % (12345.678, 0.0001, 1e20, 3.14159, 1e-10) }}`, "1.234568e+04|0.0001|1e+20|3.14|1E-10"},
		{`{{ "%r %r %a" % ("it's", "a\nb", "é") }}`, `"it's" 'a\nb' '\xe9'`},
		{`{{ "100%%" % () }}`, "100%"},
		{`{{ "%(n)s=%(v)03d" % {"n": "x", "v": 5} }}`, "x=005"},
		{`{{ "%s" % [1, "a"] }}`, "[1, 'a']"},
		{`{{ "%d" % 3.9 }}|{{ "%d" % -3.9 }}`, "3|-3"},
		{`{{ "%c%c" % (72, "i") }}`, "Hi"},
		{`{{ "%.2s|%5s|%-5s|%05s" % ("abc", "x", "y", "z") }}`, "ab|    x|y    |    z"},
		{`{{ "%*d|%-*d|%.*f" % (4, 1, 4, 2, 2, 3.14159) }}`, "   1|2   |3.14"},
		{`{{ "%s" % true }}|{{ "%d" % true }}|{{ "%f" % 2 }}`, "True|1|2.000000"},
		{`{{ "%.0f|%#.0f" % (2.5, 3) }}`, "2|3."},
		{`{{ "%ld|%i|%u" % (5, 4, 5) }}`, "5|4|5"},
		{`{{ '%-5d|' % -3 }}{{ "%+.1e" % -0.0 }}`, "-3   |-0.0e+00"},
		{`{{ "%5.1f%%" % 99.44 }}|{{ "%10.4f|" % 3.14159 }}`, " 99.4%|    3.1416|"},
		{`{% set x = "%03d" % 42 %}{{ x }}`, "042"},
		{`{{ "[%s]" % messages[0].content }}`, "[hi]"},
		{`{{ "%s|%s" | format("a", 1) }}{{ "%(a)s" | format(a="k") }}{{ "%r" | format("q") }}`, "a|1k'q'"},
		// Numbers: Python's modulo, the sign of the divisor.
		{`{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 7.5 % 2 }}|{{ -7.5 % 2 }}|{{ 6 % 3 }}|{{ 10 % 4 }}`, "2|-2|1.5|0.5|0|2"},
		{`{% for i in range(4) %}{{ i % 2 }}{% endfor %}`, "0101"},
	}
	msgs := []Message{{Role: "user", Content: "hi"}}
	for _, c := range cases {
		tpl, err := New("fmt.jinja", c.src, "", "")
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got, err := tpl.Render(msgs, false)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

// TestPercentErrors: what Python refuses is an error naming the template
// and the construct, never a Go panic's message or a silent number.
func TestPercentErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{{ "%d" % "x" }}`, "% formatting: %d format: a real number is required, not str"},
		{`{{ "%f" % "x" }}`, "% formatting: %f format: a real number is required, not str"},
		{`{{ "%x" % 1.5 }}`, "% formatting: %x format: an integer is required, not float"},
		{`{{ "%s %s" % ("a",) }}`, "% formatting: not enough arguments for format string"},
		{`{{ "%s" % (1, 2) }}`, "% formatting: not all arguments converted during string formatting"},
		{`{{ "abc" % 5 }}`, "% formatting: not all arguments converted during string formatting"},
		{`{{ "%q" % 1 }}`, "% formatting: unsupported format character 'q' (0x71) at index 1"},
		{`{{ "%" % 1 }}`, "% formatting: incomplete format"},
		{`{{ "%(a)s" % 1 }}`, "% formatting: format requires a mapping"},
		{`{{ "%(b)s" % {"a": 1} }}`, `% formatting: key "b" not found`},
		{`{{ "%c" % "ab" }}`, "% formatting: %c requires an int or a unicode character, not str"},
		{`{{ "%d" | format("x") }}`, "% formatting: %d format: a real number is required, not str"},
		{"\n{{ 7 % 0 }}", "line 2: integer modulo by zero"},
		{`{{ 7.0 % 0 }}`, "float modulo by zero"},
		{`{% set n = 0 %}{% if 5 % n %}{% endif %}`, "integer modulo by zero"},
		{`{{ [1] % 2 }}`, "unsupported operand types for %: list and int"},
		{`{{ 3 % "a" }}`, "unsupported operand types for %: int and str"},
	}
	for _, c := range cases {
		tpl, err := New("fmt.jinja", c.src, "", "")
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got, err := tpl.Render([]Message{{Role: "user", Content: "hi"}}, false)
		var te *TemplateError
		if !errors.As(err, &te) || te.Name != "fmt.jinja" || !strings.Contains(te.Message, c.want) ||
			strings.Contains(te.Message, "runtime error") || strings.Contains(te.Message, "__ftune") {
			t.Errorf("%s: got %q, %v; want an error of fmt.jinja saying %q", c.src, got, err, c.want)
		}
	}
}

// TestPercentBudget: a width or precision is a string length, checked
// against MaxValue before anything is padded.
func TestPercentBudget(t *testing.T) {
	l := Limits{MaxOutput: 1 << 20, MaxValue: 1 << 10, MaxSteps: 1000, Timeout: DefaultLimits.Timeout, MaxMemory: DefaultLimits.MaxMemory}
	for _, src := range []string{`{{ "%2000d" % 1 }}`, `{{ "%.2000f" % 1 }}`, `{{ "%*s" % (2000, "x") }}`, `{{ "%s%s" % (x, x) }}`} {
		tpl := limited(t, "{% set x = 'ab' * 400 %}"+src, l)
		if _, err := tpl.Render(nil, false); !errors.Is(err, ErrBudget) {
			t.Errorf("%s: %v, want ErrBudget", src, err)
		}
	}
}

// TestPercentWidthCheckedFirst: a width past MaxValue is refused before
// the padding is built, not after (64 MiB of spaces here).
func TestPercentWidthCheckedFirst(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := printf("%67108864d", singleArg(exec.AsValue(1)), newBudget(Limits{MaxValue: 1 << 10}))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBudget) {
		t.Errorf("got %v, want ErrBudget", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("allocated %d bytes before refusing the width", grown)
	}
}
