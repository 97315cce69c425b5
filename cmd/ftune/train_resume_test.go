package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeOverrides: a resumed run used to apply --lr, --seq-len and
// other overrides silently and leave config.yaml as it was. Changes to the
// optimisation are refused, naming each key; the safe ones (max_steps
// here) are printed and recorded in config.yaml.
func TestResumeOverrides(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	common := []string{"--batch-size", "2", "--seq-len", "64", "--eval-questions", "0", "--set", "training.eval.generation.samples=0",
		"--set", "training.checkpointing.every=1", "--no-progress"}
	if out, err := run(t, append([]string{"train", "--max-steps", "1", "--output", outDir, "--run-name", "r"}, common...)...); err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir := filepath.Join(outDir, "r")
	cfgPath := filepath.Join(dir, "config.yaml")
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

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
