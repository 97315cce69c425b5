package chat

import (
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// FuzzRender: any template source and any message must give a rendering
// or an error, never a panic. Seeds: the built-ins, Qwen3's template and
// testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	for _, name := range BuiltinNames() {
		f.Add(builtins[name].source, "user", "hi {{ there }} {% x %}", true)
	}
	if q, err := Load("testdata/qwen3"); err == nil {
		f.Add(q.Source(), "assistant", "<think>\nhm\n</think>\n\nParis.", false)
	}
	f.Add("{{ messages[0].content.split(' ')|join('-') }}{{ raise_exception('x') }}", "tool", "a b", true)
	f.Fuzz(func(t *testing.T, src, role, content string, gen bool) {
		tpl, err := New("fuzz", src, "<s>", "</s>")
		if err != nil {
			return
		}
		_, _ = tpl.Render([]Message{{"system", "s"}, {role, content}, {"user", content}}, gen)
	})
}
