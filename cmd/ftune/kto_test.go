package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// feedbackFile is testdata/kto's unpaired feedback (see its README): 160
// chemistry questions, each with its answer (desirable) or its answer
// spelt backwards (undesirable).
const feedbackFile = "../../testdata/kto/chemistry-feedback.jsonl"

// TestTrainKTO: ftune train --set training.objective=kto on a file of
// unpaired feedback detects its shape, measures the KTO loss before
// training at policy = reference (0.5: 1 − σ(0) with weights 1), and after
// 20 steps the held-out desirable answers' rewards are above the
// undesirable ones'; ftune eval --objective kto measures the same loss on
// the base.
func TestTrainKTO(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out, err := run(t, "train", "--data", feedbackFile, "--set", "training.objective=kto", "--max-steps", "20",
		"--output", t.TempDir(), "--run-name", "kto", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	for _, want := range []string{
		"shape unpaired_preference (detected), 160 examples",
		"16 of 160 training examples held out for validation",
		"== before training\nvalidation examples: KTO loss 0.5000  reward chosen 0.0000 rejected 0.0000 margin 0.0000 kl 0.0000\n",
		"objective: KTO (kto loss, beta 0.1)",
		"== after training (20 steps)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	after := regexp.MustCompile(`== after training \(20 steps\)\nvalidation examples: KTO loss ([0-9.]+)  reward chosen (-?[0-9.]+) rejected (-?[0-9.]+) margin (-?[0-9.]+)`).FindStringSubmatch(out)
	if after == nil {
		t.Fatalf("no validation after training:\n%s", out)
	}
	loss, _ := strconv.ParseFloat(after[1], 64)
	margin, _ := strconv.ParseFloat(after[4], 64)
	if !(loss < 0.5) || !(margin > 0) {
		t.Errorf("after 20 steps: KTO loss %g (before 0.5), margin %g: KTO did not learn the feedback\n%s", loss, margin, out)
	}

	abs, err := filepath.Abs(feedbackFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "eval", "--data", abs, "--objective", "kto", "--set", "training.kto.desirable_weight=3")
	// Half of each held-out example's weight, (3·n_d + n_u) / (2n): 160
	// less the 69 desirable and 75 undesirable training examples leave 11
	// and 5, (33 + 5) / 32. Eval trains nothing: the training
	// examples' counts and the weights advice are train's to say.
	if err != nil || strings.Contains(out, "training examples:") || strings.Contains(out, "warning") || !strings.Contains(out, "validation examples: KTO loss 1.1875  reward chosen 0.0000 rejected 0.0000 margin 0.0000 kl 0.0000") {
		t.Fatalf("eval --objective kto: %v\n%s", err, out)
	}
}

// TestPrepareUnpairedFeedback: ftune data prepare on a subject folder of
// unpaired feedback (supervised tokenising, which refuses preference
// records) says which record it refuses; it panicked hashing the records'
// absent second completion.
func TestPrepareUnpairedFeedback(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	root := t.TempDir()
	b, err := os.ReadFile(feedbackFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "fb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fb", "train.jsonl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "data", "prepare", "--data", root, "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "fb", "train.jsonl")+":1: an unpaired feedback record") {
		t.Fatalf("data prepare: %v\n%s", err, out)
	}
}
