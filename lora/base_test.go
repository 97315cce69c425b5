package lora

import (
	"encoding/json"
	"errors"
	"io/fs"
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

// CheckPath tells a base that is gone from a path that holds something
// other than a model folder, and names the path and what was expected.
func TestBaseCheckPath(t *testing.T) {
	dir := t.TempDir()
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write(filepath.Join(dir, "file"))
	write(filepath.Join(dir, "weights-only", "model.safetensors"))
	write(filepath.Join(dir, "config-only", "config.json"))
	write(filepath.Join(dir, "config-as-folder", "config.json", "x"))
	write(filepath.Join(dir, "config-as-folder", "model.safetensors"))
	write(filepath.Join(dir, "model", "config.json"))
	write(filepath.Join(dir, "model", "model.safetensors"))
	write(filepath.Join(dir, "sharded", "config.json"))
	write(filepath.Join(dir, "sharded", "model.safetensors.index.json"))
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		is   error  // nil: a model folder
		says string // in the error, after the path
	}{
		{"", fs.ErrNotExist, "the base record has no path"},
		{filepath.Join(dir, "gone"), fs.ErrNotExist, filepath.Join(dir, "gone") + " is gone"},
		{file, ErrBaseNotModel, file + " is a file, not a model folder (want a model folder: config.json and model.safetensors"},
		{filepath.Join(dir, "empty"), ErrBaseNotModel, "without config.json or model.safetensors"},
		{filepath.Join(dir, "weights-only"), ErrBaseNotModel, "weights-only is a folder without config.json,"},
		{filepath.Join(dir, "config-only"), ErrBaseNotModel, "config-only is a folder without model.safetensors,"},
		{filepath.Join(dir, "config-as-folder"), ErrBaseNotModel, "without config.json,"},
		{filepath.Join(dir, "model"), nil, ""},
		{filepath.Join(dir, "sharded"), nil, ""},
	} {
		err := Base{Name: "b", Path: c.path, Hash: "abc", Scheme: nn.FingerprintScheme}.CheckPath()
		if c.is == nil {
			if err != nil {
				t.Errorf("%s: %v, want a model folder", c.path, err)
			}
			continue
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: err = %v, want %v saying %q", c.path, err, c.is, c.says)
		}
		if c.is == fs.ErrNotExist && errors.Is(err, ErrBaseNotModel) {
			t.Errorf("%q: a missing base is reported as not a model folder: %v", c.path, err)
		}
	}
}
