package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
)

// TestInitFrom: ftune init --from converts another trainer's config into
// a run file that `ftune train -c` loads and validates, says on stderr
// what it did not convert, and refuses like init: an existing FILE
// without --force, and FILE naming the config being converted even with
// --force (that would replace the user's config). A value that cannot be
// converted writes nothing and names the file and line.
func TestInitFrom(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "axolotl.yaml")
	axolotl := "base_model: " + dir + "\nsequence_len: 512\nlearning_rate: 0.0002\nlora_r: 8\nlora_alpha: 16\nnum_epochs: 2\ndeepspeed: zero2.json\n"
	if err := os.WriteFile(src, []byte(axolotl), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run.yaml")
	code, stdout, stderr := exitOf(t, "init", "--from", src, out)
	if code != 0 || !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stdout, src+":7: deepspeed: not converted: multi-GPU sharding is not offered") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	cfg, err := config.Resolve(out, nil)
	if err != nil {
		t.Fatalf("the converted file does not load: %v", err)
	}
	if cfg.Model.Path != dir || cfg.Data.MaxLength != 512 || cfg.Training.LoRA.R != 8 || cfg.Training.MaxEpochs != 2 || cfg.Training.MaxSteps != 0 {
		t.Errorf("converted to %+v %+v", cfg.Model, cfg.Training)
	}
	if code, _, stderr := exitOf(t, "init", "--from", src, out); code != 1 || !strings.Contains(stderr, "exists (use --force to overwrite)") {
		t.Errorf("an existing FILE: exit %d, %q", code, stderr)
	}
	for _, force := range []bool{false, true} {
		args := []string{"init", "--from", src, src}
		if force {
			args = append(args, "--force")
		}
		if code, _, stderr := exitOf(t, args...); code != 2 || !strings.Contains(stderr, src+" is the config to convert") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	if b, err := os.ReadFile(src); err != nil || string(b) != axolotl {
		t.Fatalf("the source now holds %q (%v)", b, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("base_model: x/y\nnum_epochs: 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if code, _, stderr := exitOf(t, "init", "--from", bad, other); code != 1 || !strings.Contains(stderr, bad+":2: num_epochs: 0.5: ftune trains whole epochs") {
		t.Errorf("a value that cannot be converted: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a failed conversion wrote %s (%v)", other, err)
	}
}

// TestInitNoFolder: a FILE in a folder that does not exist is refused
// naming the folder, before anything is converted or written; the error
// named the temporary file that could not be made beside FILE.
func TestInitNoFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "axolotl.yaml")
	if err := os.WriteFile(src, []byte("base_model: "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no", "such")
	for _, args := range [][]string{{"init", filepath.Join(missing, "run.yaml")}, {"init", "--from", src, filepath.Join(missing, "run.yaml")}} {
		code, _, stderr := exitOf(t, args...)
		if code != 2 || !strings.Contains(stderr, "folder "+missing+" does not exist") || strings.Contains(stderr, ".tmp") {
			t.Errorf("ftune %s: exit %d, %q; want exit 2 naming the folder", strings.Join(args, " "), code, stderr)
		}
	}
}
