package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestInflate(t *testing.T) {
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "a.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Inflate(t, plain); got != plain {
		t.Errorf("a folder without .zst files: got %s, want it unchanged", got)
	}

	zipped := t.TempDir()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(zipped, "tokenizer.json.zst"), zw.EncodeAll([]byte(`{"model": {}}`), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(zipped, "tokenizer_config.json"), []byte(`{"x": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := Inflate(t, zipped)
	if b, err := os.ReadFile(filepath.Join(out, "tokenizer.json")); err != nil || string(b) != `{"model": {}}` {
		t.Errorf("tokenizer.json: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "tokenizer_config.json")); err != nil || string(b) != `{"x": 1}` {
		t.Errorf("tokenizer_config.json copied as %q, %v", b, err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.zst"), []byte("not zstd"), 0o644)
	if err := InflateFile(filepath.Join(bad, "x.zst"), t.TempDir()); err == nil {
		t.Error("a corrupt .zst inflated without an error")
	}
}
