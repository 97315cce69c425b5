package chat

import "testing"

// BenchmarkRender: templates are rendered once per training example.
func BenchmarkRender(b *testing.B) {
	qwen, err := Load("testdata/qwen3")
	if err != nil {
		b.Fatal(err)
	}
	chatml, err := Builtin("chatml")
	if err != nil {
		b.Fatal(err)
	}
	for name, tpl := range map[string]*Template{"qwen3": qwen, "chatml": chatml} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tpl.Render(conversation, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("compile-qwen3", func(b *testing.B) {
		for b.Loop() {
			if _, err := New("q", qwen.Source(), "", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
