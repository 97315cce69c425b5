package ftune

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
)

// TestLoadSaysTheRecordedBaseIsNotAModel: a base record whose path now
// holds a file, or a folder that is not a model, is reported as such
// (ErrBaseNotFound, naming the path and what was expected), not as a
// base that changed since training; a model given with the adapter is
// checked against the record and used, as when the base is gone.
func TestLoadSaysTheRecordedBaseIsNotAModel(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := otherBase(t)
	adapter := trainedAdapter(t, base)
	rec, _, err := lora.ReadBase(adapter)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "model")
	if err := os.WriteFile(file, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	noConfig := t.TempDir()
	if err := os.WriteFile(filepath.Join(noConfig, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, is string }{
		{file, "is a file"},
		{noConfig, "is a folder without config.json or model.safetensors"},
	} {
		r := rec
		r.Path = c.path
		if err := lora.WriteBase(adapter, r); err != nil {
			t.Fatal(err)
		}
		_, err := Load("", LoadOptions{Adapter: adapter})
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !errors.Is(err, ErrBaseNotFound) || !errors.Is(err, lora.ErrBaseNotModel) || strings.Contains(msg, "changed") ||
			!strings.Contains(msg, c.path+" "+c.is) || !strings.Contains(msg, "want a model folder: config.json") || !strings.Contains(msg, "--model") {
			t.Errorf("recorded base %s: err = %v, want ErrBaseNotFound saying it %s, what was expected, and --model", c.path, err, c.is)
		}
		if m, err := Load(base, LoadOptions{Adapter: adapter}); err != nil || m.Dir != base {
			t.Errorf("recorded base %s, the base given: %v", c.path, err)
		}
		if _, err := Load(TinyBase, LoadOptions{Adapter: adapter}); !errors.Is(err, lora.ErrBaseMismatch) {
			t.Errorf("recorded base %s, another model given: err = %v, want ErrBaseMismatch", c.path, err)
		}
	}
}
