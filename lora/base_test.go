package lora

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// copyModel copies a model folder's config and weights, with editConfig
// applied to config.json.
func copyModel(t *testing.T, src string, editConfig func(string) string) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "config.json" && editConfig != nil {
			b = []byte(editConfig(string(b)))
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// An adapter records the base it was trained on (path and content hash)
// and refuses to load into another model of the same shapes.
func TestAdapterRecordsItsBase(t *testing.T) {
	baseDir := copyModel(t, "../testdata/fixtures/llama-tiny", nil)
	m, err := nn.Load(baseDir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(m, NewConfig(4, 8, "q_proj", "v_proj"), "default", 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, ok, err := ReadBase(dir)
	if err != nil || !ok {
		t.Fatalf("ReadBase: ok %v, err %v", ok, err)
	}
	want, err := nn.Fingerprint(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != baseDir || b.Hash != want || b.Scheme != nn.FingerprintScheme || b.Name == "" {
		t.Fatalf("recorded base %+v, want path %s, hash %s", b, baseDir, want)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["base_model_name_or_path"] != baseDir {
		t.Fatalf("base_model_name_or_path = %v, want %s", cfg["base_model_name_or_path"], baseDir)
	}
	// Same base: loads, and keeps the record for the next save.
	got, err := Load(m, dir, "default")
	if err != nil {
		t.Fatal(err)
	}
	if got.Base != b {
		t.Fatalf("loaded adapter's base %+v, want %+v", got.Base, b)
	}
	// Same shapes, other content (a retrained variant): refused.
	other := copyModel(t, "../testdata/fixtures/llama-tiny", func(s string) string {
		return strings.Replace(s, "{", `{"_name_or_path": "variant", `, 1)
	})
	m2, err := nn.Load(other, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(m2, dir, "default")
	if !errors.Is(err, ErrBaseMismatch) || !strings.Contains(err.Error(), baseDir) || !strings.Contains(err.Error(), other) {
		t.Fatalf("adapter loaded into another base: err = %v, want ErrBaseMismatch naming both folders", err)
	}
}

// A base record that is not what ftune writes is an error naming the file.
func TestReadBaseRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, BaseFile), []byte(`{"nmae": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadBase(dir); err == nil || !strings.Contains(err.Error(), BaseFile) {
		t.Fatalf("err = %v, want an error naming %s", err, BaseFile)
	}
	if _, ok, err := ReadBase(t.TempDir()); ok || err != nil {
		t.Fatalf("folder without a record: ok %v, err %v", ok, err)
	}
}
