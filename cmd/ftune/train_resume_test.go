package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneStepRun trains tiny-base for one step (rows of 64 tokens, a
// checkpoint at it, two validation batches) into a fresh run folder, and
// returns the folder, its config.yaml and that file's content.
func oneStepRun(t *testing.T) (dir, cfgPath string, orig []byte) {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	if out, err := run(t, "train", "--max-steps", "1", "--output", outDir, "--run-name", "r", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.eval.generation.samples=0", "--set", "training.checkpointing.every=1", "--set", "training.eval.max_batches=2", "--no-progress"); err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir = filepath.Join(outDir, "r")
	cfgPath = filepath.Join(dir, "config.yaml")
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath, orig
}

// TestResumeOverrides: a resumed run used to apply --lr, --seq-len and
// other overrides silently and leave config.yaml as it was. Changes to the
// optimisation are refused, naming each key; the safe ones (max_steps
// here) are printed and recorded in config.yaml.
func TestResumeOverrides(t *testing.T) {
	dir, cfgPath, orig := oneStepRun(t)

	out, err := run(t, "train", "--resume", dir, "--lr", "1e-3", "--seq-len", "128", "--set", "training.lora.r=8", "--max-steps", "3")
	for _, want := range []string{"would change its optimisation", "data.max_length: 64 → 128 (--seq-len 128)", "training.lora.r: 16 → 8 (--set training.lora.r=8)",
		"training.optimizer.lr: 0.002 → 0.001 (--lr 1e-3)", "may change only training.max_steps"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("resume with overrides: got %v\n%s\nwant %q", err, out, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "training.max_steps: 1 → 3") {
		t.Errorf("max_steps is allowed, yet listed: %v", err)
	}
	if now, _ := os.ReadFile(cfgPath); string(now) != string(orig) {
		t.Fatal("a refused resume changed config.yaml")
	}

	out, err = run(t, "train", "--resume", filepath.Join(dir, "checkpoints", "step-00000001"))
	if err == nil || !strings.Contains(err.Error(), "this is a checkpoint folder; --resume takes the run folder") || !strings.Contains(err.Error(), "train --resume "+dir) {
		t.Fatalf("resume at a checkpoint: %v\n%s", err, out)
	}

	// The memory savers may change too (after an out-of-memory error).
	out, err = run(t, "train", "--resume", dir, "--max-steps", "2", "--no-progress",
		"--set", "training.gradient_checkpointing=true", "--set", "training.mlp_chunk_tokens=32")
	if err != nil {
		t.Fatalf("resume extending max_steps: %v\n%s", err, out)
	}
	for _, want := range []string{"training.max_steps: 1 → 2", "training.gradient_checkpointing: false → true", "training.mlp_chunk_tokens: 0 → 32", "== after training (2 steps)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("resume output lacks %q:\n%s", want, out)
		}
	}
	now, err := os.ReadFile(cfgPath)
	if err != nil || !strings.Contains(string(now), "max_steps: 2") {
		t.Fatalf("config.yaml does not record max_steps 2: %v\n%s", err, now)
	}
}

// TestResumeEditedConfig: editing a run's config.yaml before --resume got
// around the rule on what a resume may change: a learning rate raised
// from 0.002 to 0.5 was applied silently, and a LoRA rank lowered from 16
// to 8 failed as "no checkpoint" without a word about the edit. Both are
// refused against the config the run started with, naming each key, its
// values and its line; max_steps edited there is still allowed.
func TestResumeEditedConfig(t *testing.T) {
	dir, cfgPath, orig := oneStepRun(t)
	edit := func(from, to string) string {
		s := strings.Replace(string(orig), from, to, 1)
		if s == string(orig) {
			t.Fatalf("config.yaml has no %q", from)
		}
		if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct{ from, to, want string }{
		{"lr: 0.002", "lr: 0.5", "training.optimizer.lr: 0.002 → 0.5 (" + cfgPath + ":"},
		{"r: 16", "r: 8", "training.lora.r: 16 → 8 (" + cfgPath + ":"},
	} {
		edited := edit(c.from, c.to)
		out, err := run(t, "train", "--resume", dir, "--no-progress")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "was edited after the run started") {
			t.Fatalf("resume with %q edited to %q: %v\n%s\nwant %q", c.from, c.to, err, out, c.want)
		}
		if now, _ := os.ReadFile(cfgPath); string(now) != edited {
			t.Fatal("a refused resume rewrote config.yaml")
		}
	}
	edit("max_steps: 1", "max_steps: 2")
	if out, err := run(t, "train", "--resume", dir, "--no-progress"); err != nil || !strings.Contains(out, "== after training (2 steps)") {
		t.Fatalf("resume with max_steps edited: %v\n%s", err, out)
	}
}

// TestResumeAfterAShorterResume: a resume that lowers max_steps below
// eval.every records the interval cut to the run (config.yaml says what
// the run does); the next resume refused the run as edited
// ("training.eval.every: 2 → 1 ... put those keys back"), and only
// editing config.yaml by hand got it going again.
func TestResumeAfterAShorterResume(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	args := []string{"--batch-size", "2", "--seq-len", "64", "--eval-questions", "0", "--set", "training.eval.max_batches=2", "--no-progress"}
	// Stopped after its first step (max_time), as a Ctrl-C would.
	if out, err := run(t, append([]string{"train", "--max-steps", "6", "--output", outDir, "--run-name", "r", "--max-time", "1ns",
		"--set", "training.eval.every=3", "--set", "training.checkpointing.every=1"}, args...)...); err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir := filepath.Join(outDir, "r")
	if out, err := run(t, append([]string{"train", "--resume", dir, "--max-steps", "2", "--max-time", "0s"}, args...)...); err != nil || !strings.Contains(out, "training.eval.every: 3 → 2") {
		t.Fatalf("resume to 2 steps: %v\n%s\nwant the interval cut to it, said", err, out)
	}
	if out, err := run(t, append([]string{"train", "--resume", dir, "--max-steps", "4"}, args...)...); err != nil || !strings.Contains(out, "== after training (4 steps)") {
		t.Fatalf("resume to 4 steps after it: %v\n%s", err, out)
	}
}

// TestResumeAfterAResumeRescaledWarmup: the default warmup follows
// max_steps (a tenth of a run under 100 steps); a resume that lowers
// max_steps records the warmup it rescaled in config.yaml, and the next
// resume refused the run as edited ("training.schedule.warmup_steps:
// 10 → 0 ... put those keys back"), blaming the user for ftune's record.
func TestResumeAfterAResumeRescaledWarmup(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	args := []string{"--batch-size", "2", "--seq-len", "64", "--eval-questions", "0", "--set", "training.eval.max_batches=2", "--no-progress"}
	// 200 steps (the default warmup, 10, stands), stopped after the first.
	if out, err := run(t, append([]string{"train", "--max-steps", "200", "--output", outDir, "--run-name", "r", "--max-time", "1ns",
		"--set", "training.checkpointing.every=1"}, args...)...); err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir := filepath.Join(outDir, "r")
	if out, err := run(t, append([]string{"train", "--resume", dir, "--max-steps", "3", "--max-time", "0s"}, args...)...); err != nil || !strings.Contains(out, "== after training (3 steps)") {
		t.Fatalf("resume to 3 steps: %v\n%s", err, out)
	}
	if out, err := run(t, append([]string{"train", "--resume", dir, "--max-steps", "4"}, args...)...); err != nil || !strings.Contains(out, "== after training (4 steps)") {
		t.Fatalf("resume to 4 steps after it: %v\n%s", err, out)
	}
}

// TestResumeAFinishedRun: resuming a run that finished its steps says so
// and leaves the folder as it was (it evaluated, exported and reported
// again, and metrics.jsonl gained a second after-training record); a
// higher --max-steps still trains on.
func TestResumeAFinishedRun(t *testing.T) {
	dir, _, _ := oneStepRun(t)
	metrics := filepath.Join(dir, "metrics.jsonl")
	before, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "train", "--resume", dir, "--no-progress")
	if err != nil || !strings.Contains(out, "already finished its 1 steps: nothing to resume") || strings.Contains(out, "== after training") {
		t.Fatalf("resume of a finished run: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(metrics); string(after) != string(before) {
		t.Errorf("metrics.jsonl changed:\n%s\nwas\n%s", after, before)
	}
	if out, err := run(t, "train", "--resume", dir, "--max-steps", "2", "--no-progress"); err != nil || !strings.Contains(out, "== after training (2 steps)") {
		t.Errorf("resume to 2 steps: %v\n%s", err, out)
	}
}

// TestResumeFromAnotherFolder: a run's relative data paths are the
// folder it started in's, wherever it is resumed from: another folder
// holding a file of the same name, or none, is not what the run trains on
// (it read that other file, with only a warning that the data changed, or
// failed to find it). An emptied data.token_cache on resume reads the
// cache the run last used, and config.yaml records that one.
func TestResumeFromAnotherFolder(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	started, elsewhere := t.TempDir(), t.TempDir()
	write := func(dir string, n int) {
		var b strings.Builder
		for i := range n {
			b.WriteString(`{"messages":[{"role":"user","content":"What is ` + strings.Repeat("big ", i%5) + `?"},{"role":"assistant","content":"` + dir[len(dir)-3:] + `"}]}` + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, "sums.jsonl"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(started, 40)
	write(elsewhere, 12)
	common := []string{"--batch-size", "2", "--seq-len", "64", "--eval-questions", "0", "--set", "training.checkpointing.every=1",
		"--set", "training.eval.max_batches=1", "--no-progress"}
	t.Chdir(started)
	if out, err := run(t, append([]string{"train", "--data", "sums.jsonl", "--token-cache", "tokens", "--max-steps", "1", "--output", "runs", "--run-name", "r"}, common...)...); err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir := filepath.Join(started, "runs", "r")
	for _, c := range []struct {
		cwd   string
		extra []string
	}{{elsewhere, nil}, {t.TempDir(), []string{"--set", "data.token_cache="}}} {
		t.Chdir(c.cwd)
		steps := "2"
		if c.extra != nil {
			steps = "3"
		}
		out, err := run(t, append(append([]string{"train", "--resume", dir, "--max-steps", steps}, common...), c.extra...)...)
		if err != nil {
			t.Fatalf("resume from %s: %v\n%s", c.cwd, err, out)
		}
		if !strings.Contains(out, filepath.Join(started, "sums.jsonl")) || strings.Contains(out, "data changed") || !strings.Contains(out, "from the token cache") {
			t.Errorf("resume from %s did not read the run's data and cache:\n%s", c.cwd, out)
		}
	}
	recorded, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil || !strings.Contains(string(recorded), "token_cache: "+filepath.Join(started, "tokens")) {
		t.Errorf("config.yaml does not record the cache the resume read: %v\n%s", err, recorded)
	}
}
