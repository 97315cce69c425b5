package recipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/assets"
)

// textModel copies tiny-base's tokenizer files into a temporary model
// folder, with chat_template.jinja holding tmpl ("" = no template).
func textModel(t *testing.T, tmpl string) string {
	t.Helper()
	src, err := assets.Model(assets.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if tmpl != "" {
		if err := os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBrokenModelTemplateIsAnError: a model template that does not parse
// used to become ChatML silently; it is an error naming the file.
func TestBrokenModelTemplateIsAnError(t *testing.T) {
	dir := textModel(t, "{% for m in messages %}{{ m.content }")
	_, err := LoadTextFor(dir, "auto", 0)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "chat_template.jinja")) {
		t.Fatalf("got %v, want an error naming %s", err, filepath.Join(dir, "chat_template.jinja"))
	}
	// A template the run names replaces the broken one.
	p, err := LoadTextFor(dir, "chatml", 0)
	if err != nil || p.Fallback != "" || !strings.Contains(p.tmpl.Source(), "<|im_start|>") {
		t.Fatalf("data.template chatml over a broken model template: %v (fallback %q)", err, p.Fallback)
	}
}

// TestMissingTemplateFallbackIsSaid: the family's built-in (ChatML, for a
// tokenizer with no family's markers) stands in for a model without a
// template, and Fallback names it.
func TestMissingTemplateFallbackIsSaid(t *testing.T) {
	dir := textModel(t, "")
	p, err := LoadTextFor(dir, "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Fallback, "has none; using the built-in chatml") || !strings.Contains(p.tmpl.Source(), "<|im_start|>") {
		t.Fatalf("fallback %q, template %q", p.Fallback, p.tmpl.Source())
	}
	good := textModel(t, "{% for m in messages %}{{ m.content }}{% endfor %}")
	if p, err := LoadTextFor(good, "auto", 0); err != nil || p.Fallback != "" {
		t.Fatalf("model with a template: %v, fallback %q", err, p.Fallback)
	}
}

// TestTemplateFileNames: data.template accepts .j2 names and paths, as
// config.Validate documents; they are read as files, not built-ins.
func TestTemplateFileNames(t *testing.T) {
	dir := textModel(t, "")
	f := filepath.Join(t.TempDir(), "mine.j2")
	if err := os.WriteFile(f, []byte("{% for m in messages %}[{{ m.content }}]{% endfor %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadTextFor(dir, f, 0)
	if err != nil || !strings.Contains(p.tmpl.Source(), "[{{ m.content }}]") {
		t.Fatalf("%s: %v", f, err)
	}
}
