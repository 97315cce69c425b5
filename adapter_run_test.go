package ftune

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAdapterRunConfig: the adapters a run folder holds (its adapter, a
// per-subject one, a checkpoint's) give the run's config.yaml, relative
// data paths joined to env.json's working_dir (absolute ones, built-in
// template names and other keys as written); an adapter outside a run
// gives none; a run without its config.yaml, ErrRunConfigMissing.
func TestAdapterRunConfig(t *testing.T) {
	run := filepath.Join(t.TempDir(), "runs", "r")
	for _, d := range []string{"adapter", "adapters/chemistry", "checkpoints/step-00000002/adapter"} {
		if err := os.MkdirAll(filepath.Join(run, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(run, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.yaml", "data:\n  root: subjects\n  files: [a.jsonl, /abs/b.jsonl, 'more/*.csv']\n  template: tmpl/chat.jinja\n  val_split: 0.3\n")
	write("manifest.json", "{}")
	write("env.json", `{"working_dir": "/home/u/proj"}`)
	for _, d := range []string{"adapter", "adapters", "adapters/chemistry", "checkpoints/step-00000002/adapter"} {
		cfg, path, err := AdapterRunConfig(filepath.Join(run, d))
		if err != nil || cfg == nil || path != filepath.Join(run, "config.yaml") {
			t.Fatalf("%s: config %v, path %q, err %v; want the run's config.yaml", d, cfg, path, err)
		}
		want := []string{"/home/u/proj/a.jsonl", "/abs/b.jsonl", "/home/u/proj/more/*.csv"}
		if cfg.Data.Root != "/home/u/proj/subjects" || !slices.Equal(cfg.Data.Files, want) || cfg.Data.Template != "/home/u/proj/tmpl/chat.jinja" || cfg.Data.ValSplit != 0.3 {
			t.Errorf("%s: data %+v; want the paths under the working dir and val_split 0.3", d, cfg.Data)
		}
	}
	write("config.yaml", "data:\n  template: llama3\n")
	if cfg, _, err := AdapterRunConfig(filepath.Join(run, "adapter")); err != nil || cfg.Data.Template != "llama3" {
		t.Errorf("a built-in template: %v, %+v; want llama3 as written", err, cfg)
	}
	if cfg, path, err := AdapterRunConfig(t.TempDir()); cfg != nil || path != "" || err != nil {
		t.Errorf("an adapter outside any run: %v, %q, %v; want none", cfg, path, err)
	}
	// A run folder that lost its config.yaml gave none either, and the
	// defaults were evaluated in its place.
	if err := os.Remove(filepath.Join(run, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"adapter", "adapters/chemistry"} {
		if cfg, path, err := AdapterRunConfig(filepath.Join(run, d)); cfg != nil || path != filepath.Join(run, "config.yaml") || !errors.Is(err, ErrRunConfigMissing) {
			t.Errorf("%s of a run without config.yaml: %v, %q, %v; want ErrRunConfigMissing naming the file", d, cfg, path, err)
		}
	}
}
