package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/assets"
)

// TestEvalDataTakesWhatTrainTakes: eval's --data is train's (data.files):
// a file, a glob or a folder of files is evaluated on the share of it that
// train holds out for validation (it was a subject root: a file failed
// with "subject root: open my.jsonl: not a directory"); a folder of
// subject folders still works, and --data-root is train's too.
func TestEvalDataTakesWhatTrainTakes(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%d"}]}`+"\n", i, i, 2*i)
	}
	file := filepath.Join(dir, "sums.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", file}, "subject sums: no validation file; 4 of 40 training examples held out for validation (data.val_split 0.1, data.seed 42)"},
		{[]string{"--data", filepath.Join(dir, "*.jsonl")}, "4 of 40 training examples held out"},
		{[]string{"--data", dir}, "4 of 40 training examples held out"},
		{[]string{"--data-root", "../../assets/data/subjects", "--subjects", "chemistry"}, "validation: loss"}, // val files: nothing held out
	} {
		out, err := run(t, append([]string{"eval", "--questions", "0"}, c.args...)...)
		if err != nil || !strings.Contains(out, c.want) || !strings.Contains(out, "validation: loss") {
			t.Errorf("eval %v: %v\n%s\nwant a validation loss and %q", c.args, err, out, c.want)
		}
	}
}

// TestEvalUsesTheRunsSettings: an adapter a run wrote is evaluated with
// that run's config.yaml, its relative data path taken from the folder
// the run started in, so the rows held out are the run's (eval used the
// defaults: 4 of 40 rows with seed 42, where the run held out 12 with seed
// 7, and the other 8 of those 12 it had trained on); the validation loss
// is the run's last, to the digits printed. Changing what decides the
// held-out rows is warned about; -c replaces the run's settings.
func TestEvalUsesTheRunsSettings(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	work, elsewhere := t.TempDir(), t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"prompt":"What is %d plus %d?","completion":" %d"}`+"\n", i, i, 2*i)
	}
	if err := os.WriteFile(filepath.Join(work, "sums.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	out, err := run(t, "train", "--data", "sums.jsonl", "--max-steps", "2", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "data.val_split=0.3", "--set", "data.seed=7", "--output", "runs", "--run-name", "r", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	held := "12 of 40 training examples held out for validation (data.val_split 0.3, data.seed 7)"
	last := lastLine(out, "validation: loss")
	if !strings.Contains(out, held) || last == "" {
		t.Fatalf("train did not hold out %q or print a validation loss:\n%s", held, out)
	}
	adapter := filepath.Join(work, "runs", "r", "adapter")
	t.Chdir(elsewhere)
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "0")
	if err != nil || !strings.Contains(out, "note: the settings of the run that trained the adapter: "+filepath.Join(work, "runs", "r", "config.yaml")) ||
		!strings.Contains(out, held) || lastLine(out, "validation: loss") != last || strings.Contains(out, "warning") {
		t.Errorf("eval of the run's adapter: %v\n%s\nwant the run's settings, %q and the run's last %q", err, out, held, last)
	}
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "0", "--set", "data.val_split=0.1")
	if err != nil || !strings.Contains(out, "warning: data.val_split 0.1 (the run's 0.3): the rows held out are not the ones the run held out") {
		t.Errorf("eval with another val_split: %v\n%s\nwant a warning", err, out)
	}
	file := filepath.Join(elsewhere, "run.yaml")
	if err := os.WriteFile(file, []byte("data:\n  files: ["+filepath.Join(work, "sums.jsonl")+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "0", "-c", file)
	if err != nil || strings.Contains(out, "note: the settings of the run") || !strings.Contains(out, "4 of 40 training examples held out for validation (data.val_split 0.1, data.seed 42)") ||
		!strings.Contains(out, "warning: data.val_split 0.1 (the run's 0.3), data.seed 42 (the run's 7)") {
		t.Errorf("eval -c: %v\n%s\nwant the run file's settings, with the warning", err, out)
	}
}

// lastLine is the last line of out holding s ("" when none does).
func lastLine(out, s string) string {
	line := ""
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) {
			line = strings.TrimSpace(l)
		}
	}
	return line
}

// TestAdapterOfARelativeModelPath: an adapter trained on --model
// ./mymodel records the base's absolute path, so generate and eval find
// it from another folder (they said "the recorded base path ./mymodel is
// gone").
func TestAdapterOfARelativeModelPath(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	work, elsewhere := t.TempDir(), t.TempDir()
	// Not tiny-base by its fingerprint: the embedded copy would stand in
	// for a base that is gone.
	otherBase(t, filepath.Join(work, "mymodel"))
	t.Chdir(work)
	out, err := run(t, "train", "--model", "./mymodel", "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.eval.max_batches=2", "--output", "runs", "--run-name", "r", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	adapter := filepath.Join(work, "runs", "r", "adapter")
	t.Chdir(elsewhere)
	if out, err := run(t, "generate", "--adapter", adapter, "--prompt", "Hello", "--max-tokens", "2"); err != nil {
		t.Errorf("generate from another folder: %v\n%s", err, out)
	}
	if out, err := run(t, "eval", "--adapter", adapter, "--questions", "0"); err != nil {
		t.Errorf("eval from another folder: %v\n%s", err, out)
	}
}

// TestRunFolderAsAdapter: a run's folder given as --adapter is refused
// naming its adapter folder, by generate, export and eval alike (they
// said "open RUN/adapter_config.json: no such file", and eval fell back to
// the bundled subjects).
func TestRunFolderAsAdapter(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	out, err := run(t, "train", "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.eval.max_batches=2", "--output", dir, "--run-name", "r", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	runDir := filepath.Join(dir, "r")
	want := "this is a training run's folder; its adapter is " + filepath.Join(runDir, "adapter")
	for _, args := range [][]string{
		{"generate", "--adapter", runDir, "--prompt", "Hello"},
		{"export", "--adapter", runDir, "--format", "peft", "--out", filepath.Join(dir, "out")},
		{"eval", "--adapter", runDir, "--questions", "0"},
	} {
		if out, err := run(t, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v\n%s\nwant %q", args[0], err, out, want)
		}
	}
}

// otherBase writes tiny-base's files to dir with one more byte in
// config.json: the same weights, another base by its fingerprint.
func otherBase(t *testing.T, dir string) string {
	t.Helper()
	base, err := assets.Model(assets.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(cfg, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
