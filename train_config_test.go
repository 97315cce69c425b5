package ftune

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/config"
)

// tinyTrainConfig is the main job cut to a couple of seconds: tiny-base,
// short rows, no generated answers, two validation batches (of the
// bundled subjects' 57 at this size: validation still runs, and no test
// using this config reads its figures), its run folder under dir.
func tinyTrainConfig(dir string, steps int) *RunConfig {
	cfg := DefaultConfig()
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength = steps, 2, 64
	cfg.Training.Eval.Generation.Questions, cfg.Training.Eval.Generation.Samples = 0, 0
	cfg.Training.Eval.MaxBatches = 2
	cfg.Training.Checkpointing.Every = 1
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = dir, "r"
	return cfg
}

// TestTrainLeavesTheConfig: Train used to write the settings in effect
// for its short run (warmup 0, eval.every 2) into the caller's config, so
// that the caller's next, longer run trained with them. The caller's
// config is now left exactly as it was.
func TestTrainLeavesTheConfig(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 2)
	before := cfg.Clone()
	if _, err := Train(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if d := config.Diff(before, cfg); len(d) > 0 {
		t.Fatalf("Train changed the caller's config: %v", d)
	}
}

// TestEvaluateLeavesTheConfigAsTrainDoes: Evaluate maps the config as
// Train does and points it at opt.Model; the caller's config stays as it
// was (its model path, which Evaluate replaces, included).
func TestEvaluateLeavesTheConfigAsTrainDoes(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 2)
	cfg.Data.Subjects = []string{"chemistry"}
	cfg.Training.Eval.MaxBatches = 1
	cfg.Model.Path = "a-model-opt.Model-replaces"
	before := cfg.Clone()
	if _, err := Evaluate(context.Background(), EvaluateOptions{Config: cfg, Model: TinyBase}); err != nil {
		t.Fatal(err)
	}
	if d := config.Diff(before, cfg); len(d) > 0 {
		t.Fatalf("Evaluate changed the caller's config: %v", d)
	}
}

// TestTrainNilConfig: Train(ctx, nil, log) panicked; nil is DefaultConfig,
// as for FineTune and Evaluate (here stopped at once by a cancelled ctx).
func TestTrainNilConfig(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	t.Chdir(t.TempDir()) // the default output folder is ./runs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Train(ctx, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Train(cancelled, nil): %v, want an interruption wrapping context.Canceled", err)
	}
	if m, _ := filepath.Glob("runs/*/checkpoints"); len(m) > 0 {
		t.Errorf("a cancelled run left %v", m)
	}
}

// TestFineTuneRefusesBeforeWritingData: a config Train would refuse (a
// negative learning rate) is refused before FineTune writes the examples
// under the output folder.
func TestFineTuneRefusesBeforeWritingData(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyTrainConfig(dir, 1)
	cfg.Training.Optimizer.LR = -1
	examples := []Example{{Messages: []Message{{Role: "user", Content: "Symbol of iron?"}, {Role: "assistant", Content: "Fe"}}}}
	if _, err := FineTune(context.Background(), examples, cfg, nil); err == nil {
		t.Fatal("a negative learning rate was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s/data exists after the refusal (err %v): the examples were written first", dir, err)
	}
}
