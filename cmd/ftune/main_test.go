package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/recipe"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestTrainEndToEnd runs the main job shortened through the CLI: embedded
// model and data, evaluation before and after, run folder, exported PEFT
// adapter that generate can load.
func TestTrainEndToEnd(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	out, err := run(t, "train", "--max-steps", "3", "--batch-size", "2", "--seq-len", "128", "--eval-questions", "2",
		"--set", "training.eval.generation.samples=1", "--set", "training.eval.max_batches=2", "--output", outDir, "--run-name", "e2e", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	for _, want := range []string{"== before training", "== after training (3 steps)", "validation: loss", "exact match", "sample answers", "adapter default:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	runDir := filepath.Join(outDir, "e2e")
	for _, f := range []string{"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "config.yaml", "metrics.jsonl", "manifest.json", "summary.json", "options.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	ev, err := run(t, "eval", "--adapter", filepath.Join(runDir, "adapter"), "--questions", "1", "--subjects", "[chemistry]", "--set", "training.eval.max_batches=2")
	if err != nil || !strings.Contains(ev, "validation: loss") || !strings.Contains(ev, "chemistry") {
		t.Fatalf("eval with the exported adapter: %v\n%s", err, ev)
	}
	lst, err := run(t, "runs", "list", "--output", outDir)
	if err != nil || !strings.Contains(lst, "e2e") || !strings.Contains(lst, "finished") {
		t.Fatalf("runs list: %v\n%s", err, lst)
	}
	for _, f := range []string{"merged", "gguf-lora"} {
		dst := filepath.Join(t.TempDir(), "export-"+f)
		if out, err := run(t, "export", "--adapter", filepath.Join(runDir, "adapter"), "--format", f, "--out", dst); err != nil {
			t.Fatalf("export %s: %v\n%s", f, err, out)
		}
		if _, err := os.Stat(dst); err != nil {
			t.Fatalf("export %s wrote nothing: %v", f, err)
		}
	}
	gen, err := runCapture(t, "generate", "--adapter", filepath.Join(runDir, "adapter"), "--prompt", "Which element has atomic number 26?", "--max-tokens", "4")
	if err != nil {
		t.Fatalf("generate with the exported adapter: %v\n%s", err, gen)
	}
}

func runCapture(t *testing.T, args ...string) (string, error) { return run(t, args...) }

func TestErrorsAreOneLine(t *testing.T) {
	_, err := run(t, "train", "--model", "/nonexistent/model", "--max-steps", "1")
	if err == nil {
		t.Fatal("training a missing model succeeded")
	}
	if msg := oneLine(err); strings.Contains(msg, "\n") || !strings.Contains(msg, "/nonexistent/model") {
		t.Fatalf("error %q: want one line naming the model", msg)
	}
	if _, err := run(t, "train", "--set", "training.lora.r=0", "--max-steps", "1"); err == nil || !strings.Contains(err.Error(), "training.lora.r: must be > 0") {
		t.Fatalf("r=0: %v", err)
	}
	if _, err := run(t, "train", "--set", "training.learning_rate=1"); err == nil || !strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestResumeThroughCLI: a run stopped at step 2 (with its checkpoint)
// continues to step 4 with --resume, in the same run folder.
func TestResumeThroughCLI(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	common := []string{"--batch-size", "2", "--seq-len", "96", "--eval-questions", "1", "--set", "training.eval.generation.samples=1",
		"--set", "training.checkpointing.every=2", "--set", "training.eval.max_batches=2", "--no-progress"}
	out, err := run(t, append([]string{"train", "--max-steps", "2", "--output", outDir, "--run-name", "r"}, common...)...)
	if err != nil {
		t.Fatalf("first part: %v\n%s", err, out)
	}
	dir := filepath.Join(outDir, "r")
	out, err = run(t, append([]string{"train", "--resume", dir, "--max-steps", "4"}, common...)...)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(out, "resumed from") || !strings.Contains(out, "step-00000002") || !strings.Contains(out, "== after training (4 steps)") {
		t.Fatalf("resume output:\n%s", out)
	}
}

// TestConfigDefaultsAreTheMainJob: the YAML defaults (ftune init) and the
// recipe's Go defaults describe the same main job.
func TestConfigDefaultsAreTheMainJob(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	got, err := recipe.FromConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := recipe.Defaults()
	type knobs struct {
		Steps, Batch, Accum, SeqLen, R, Warmup, EvalEvery, Questions, Tokens, Samples, CkptEvery int
		Pack                                                                                     bool
		LR, Alpha, Dropout, Clip                                                                 float64
		Sched, Opt                                                                               string
	}
	k := func(o recipe.Options) knobs {
		return knobs{o.Steps, o.BatchSize, o.GradAccum, o.SeqLen, o.R, o.WarmupSteps, o.EvalEvery, o.EvalQuestions, o.MaxNewTokens, o.Samples, o.CheckpointEvery,
			o.Pack, o.LR, o.Alpha, o.Dropout, o.ClipNorm, o.Schedule, o.Optimizer}
	}
	if k(got) != k(want) {
		t.Fatalf("config defaults map to %+v, recipe defaults are %+v", k(got), k(want))
	}
}
