package main

import (
	"fmt"
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

// TestInitFromTheirDefaults: a file that leaves its trainer's settings
// out converts to that trainer's defaults, marked as such in the run
// file and said on stderr, and the run file trains: Axolotl's unpacked
// micro-batches of 1 row of 512 tokens with no validation data,
// LLaMA-Factory's 2048-token cutoff, transformers' 5e-05 on its linear
// schedule without warmup.
func TestInitFromTheirDefaults(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 8 {
		fmt.Fprintf(&rows, `{"instruction":"What is %d plus %d?","input":"","output":"%d"}`+"\n", i, i, 2*i)
	}
	data := filepath.Join(dir, "sums.jsonl")
	info := `{"sums": {"file_name": "sums.jsonl"}}`
	for name, text := range map[string]string{data: rows.String(), filepath.Join(dir, "dataset_info.json"): info} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ name, src, marked, said string }{
		{"axolotl.yaml", "base_model: tiny-base\ndatasets:\n  - path: " + data + "\n    type: alpaca\nmax_steps: 2\n",
			"  max_length: 512 # Axolotl's default of sequence_len\n", "axolotl.yaml: training.batch_size: not set there: Axolotl's default of micro_batch_size, 1, applies: 1"},
		{"lf.yaml", "model_name_or_path: tiny-base\nstage: sft\ndataset: sums\ndataset_dir: " + dir + "\nmax_steps: 2\n",
			"  max_length: 2048 # LLaMA-Factory's default of cutoff_len\n", "lf.yaml: data.val_split: not set there: LLaMA-Factory's default of val_size, 0: no validation data"},
		{"args.json", `{"model_name_or_path": "tiny-base", "max_steps": 2}`,
			"  lr: 5e-05 # transformers's default of learning_rate\n", "args.json: training.schedule.name: not set there: transformers's default of lr_scheduler_type, linear, applies: linear"},
	} {
		src, out := filepath.Join(dir, c.name), filepath.Join(dir, c.name+".run.yaml")
		if err := os.WriteFile(src, []byte(c.src), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := exitOf(t, "init", "--from", src, out)
		if code != 0 || !strings.Contains(stdout+stderr, c.said) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", c.name, code, stdout, stderr)
		}
		if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), c.marked) {
			t.Fatalf("%s: the run file lacks %q (%v):\n%s", c.name, c.marked, err, b)
		}
		args := []string{"train", "-c", out, "--no-progress", "--set", "training.tracking.output_dir=" + filepath.Join(dir, c.name+".runs"),
			"--set", "training.eval.max_batches=1", "--set", "training.eval.generation.questions=0"}
		if c.name == "lf.yaml" {
			// LLaMA-Factory's cutoff_len 2048 is longer than tiny-base's
			// 1024 positions: ftune refuses it (LLaMA-Factory does not),
			// naming the key to lower.
			if text, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "data.max_length 2048 exceeds the model's max_position_embeddings (1024") {
				t.Fatalf("%s: a cutoff past the model's positions: %v\n%s", c.name, err, text)
			}
			args = append(args, "--set", "data.max_length=1024")
		}
		text, err := run(t, args...)
		if err != nil {
			t.Fatalf("%s: the converted run does not train: %v\n%s", c.name, err, text)
		}
	}
}
