package chat

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/testutil"
)

func mustTime(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// fuzzLimits are tight, so that a budget the fuzzer breaks shows at once.
var fuzzLimits = Limits{MaxOutput: 1 << 20, MaxValue: 1 << 20, MaxSteps: 200_000, Timeout: 2 * time.Second, MaxMemory: 256 << 20}

// FuzzRender: any template source and any message must give a rendering
// or an error, never a panic, and stay within its budget: the output, the
// wall time and the heap growth of the rendering (with slack for the
// watchdog's polling and grace). Seeds: the built-ins, Qwen3's template,
// the resource bombs of TestRenderBudget and testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	for _, name := range BuiltinNames() {
		f.Add(builtins[name].source, "user", "hi {{ there }} {% x %}", true)
	}
	if q, err := Load("testdata/qwen3"); err == nil {
		f.Add(q.Source(), "assistant", "<think>\nhm\n</think>\n\nParis.", false)
	}
	f.Add("{{ messages[0].content.split(' ')|join('-') }}{{ raise_exception('x') }}", "tool", "a b", true)
	f.Add("{% for i in range(100000000) %}x{% endfor %}", "user", "x", false)
	f.Add("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "user", "x", false)
	f.Add("{{ messages[1].content * 100000000 }}", "user", "abc", false)
	f.Add("{{ '%s|%05.1f|%r|%x' % (messages[1].content, 3.14159, messages[2].content, 255) }}{{ '%d' % messages[1].content }}{{ -7 % 3 }}{{ 1 % 0 }}", "user", "%s %(k)s %*d", false)
	f.Add("{{ messages[1].content % (1, 'a') }}{{ messages[1].content|format(2) }}", "user", "%-*.*f %c %", false)
	f.Add("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "user", "x", false)
	// Nesting bombs (nesting_test.go).
	f.Add("{{ "+strings.Repeat("(", 300)+"1"+strings.Repeat(")", 300)+" }}", "user", "x", false)
	f.Add("{% set ns = namespace(x=1) %}{% for i in range(1000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}{{ ns.x|tojson }}", "user", "x", false)
	f.Add("{% set ns = namespace(x=messages[1].content) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}", "user", "x", false)
	f.Add("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "user", "x", false)
	f.Fuzz(func(t *testing.T, src, role, content string, gen bool) {
		tpl, err := New("fuzz", src, "<s>", "</s>")
		if err != nil {
			return
		}
		if tpl, err = tpl.WithLimits(fuzzLimits); err != nil {
			t.Fatal(err)
		}
		base, start := heapBytes(), time.Now()
		out, _ := tpl.Render([]Message{{Role: "system", Content: "s"}, {Role: role, Content: content}, {Role: "user", Content: content}}, gen)
		if d := time.Since(start); d > fuzzLimits.Timeout+2*time.Second {
			t.Errorf("rendering took %s, over its %s budget", d, fuzzLimits.Timeout)
		}
		if len(out) > fuzzLimits.MaxOutput {
			t.Errorf("output of %d bytes, over its %d budget", len(out), fuzzLimits.MaxOutput)
		}
		if grown := int64(heapBytes()) - int64(base); grown > 2*fuzzLimits.MaxMemory {
			t.Errorf("heap grew by %d MiB, over its %d MiB budget", grown>>20, fuzzLimits.MaxMemory>>20)
		}
	})
}

// TestMain runs this package's tests and fuzz workers (which inherit it)
// under testutil.TestMemory of address space: the package reads untrusted
// input, and a regression that allocates without bound must stop there.
func TestMain(m *testing.M) {
	testutil.MustLimitMemory(testutil.TestMemory)
	os.Exit(m.Run())
}

func TestUnderMemoryLimit(t *testing.T) { testutil.CheckMemoryLimited(t) }
