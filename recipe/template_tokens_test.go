package recipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestTemplateFileRendersTheModelsTokens: a data.template file renders
// bos_token and eos_token as the model's tokenizer_config.json names them,
// as the model's own template does; they rendered as "", so a template
// ending answers with eos_token (Mistral's, Llama-2's) trained answers
// without the token that ends them.
func TestTemplateFileRendersTheModelsTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "eos.jinja")
	src := "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := LoadTextFor(tinyBase, file, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.render([]format.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// tiny-base's tokenizer_config.json: eos_token <|endoftext|>, no bos_token.
	// (trim_blocks drops the newline after each block, as Jinja does.)
	if want := "user: Hiassistant: Hello<|endoftext|>"; got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
	if eos, ok := tp.tok.IDToToken(tp.eos); !ok || !strings.Contains(got, eos) {
		t.Errorf("the EOS %q is not in %q", eos, got)
	}
}

// TestInitFromCarriesItsTemplate: training on from an adapter renders with
// the template the adapter carries (it was trained through another) unless
// data.template names one; it went back to the model's own silently.
func TestInitFromCarriesItsTemplate(t *testing.T) {
	adapter := t.TempDir()
	src := "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
	if err := os.WriteFile(filepath.Join(adapter, "chat_template.jinja"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := TextFor(Options{ModelDir: tinyBase, InitAdapter: adapter}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tp.tmpl.Source() != src || !strings.Contains(tp.Fallback, "training.lora.init_from's adapter carries") {
		t.Errorf("template %q, note %q", tp.tmpl.Name(), tp.Fallback)
	}
	own := filepath.Join(t.TempDir(), "own.jinja")
	if err := os.WriteFile(own, []byte("{% for m in messages %}{{ m.content }}{% endfor %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tp, err = TextFor(Options{ModelDir: tinyBase, InitAdapter: adapter, Template: own}, 0); err != nil || tp.tmpl.Name() != "own.jinja" || tp.Fallback != "" {
		t.Errorf("data.template given: %v, template %q, note %q", err, tp.tmpl.Name(), tp.Fallback)
	}
}
