//go:build unix

package ftune

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdapterRunConfigBounded: the run folder an adapter sits in may come
// from anywhere: its config.yaml as a named pipe is refused at once (it
// hung eval), and a run without env.json (written before working_dir)
// keeps its paths as written.
func TestAdapterRunConfigBounded(t *testing.T) {
	run := filepath.Join(t.TempDir(), "r")
	if err := os.MkdirAll(filepath.Join(run, "adapter"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "config.yaml"), []byte("data:\n  files: [a.jsonl]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := AdapterRunConfig(filepath.Join(run, "adapter")); err != nil || !slices.Equal(cfg.Data.Files, []string{"a.jsonl"}) {
		t.Errorf("no env.json: %v, %+v; want the paths as written", err, cfg)
	}
	if err := os.Remove(filepath.Join(run, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(run, "config.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := AdapterRunConfig(filepath.Join(run, "adapter")); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("config.yaml a named pipe: %v, want it refused", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("config.yaml a named pipe: still reading after 5 s")
	}
}
