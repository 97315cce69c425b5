package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OtherBase copies the model folder src (tiny-base's files) into a new
// temporary folder whose config.json differs by a "_name_or_path" key, so
// its content hash does too: another base of the same shapes, the case in
// which an adapter used to go silently onto tiny-base.
func OtherBase(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "other-base")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "config.json" {
			b = []byte(strings.Replace(string(b), "{", `{"_name_or_path": "other-base", `, 1))
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
