package ftune

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
)

// TestTrainResumeRefusesChangedConfig: TrainWith{Resume} accepted any
// config, so a resume with the learning rate raised from 0.002 to 0.5
// trained at it while config.yaml still said 0.002, and an edited
// config.yaml got around the rule on what a resume may change (a lower
// LoRA rank then failed as "no checkpoint"). Both are refused now against
// the config the run started with, naming each key; a change to
// max_steps is allowed, printed and recorded in config.yaml.
func TestTrainResumeRefusesChangedConfig(t *testing.T) {
	out := trainedTwoSteps(t)
	dir := filepath.Join(out, "r")
	yamlPath := filepath.Join(dir, "config.yaml")
	orig, err := os.ReadFile(yamlPath)
	if err != nil {
		t.Fatal(err)
	}
	resume := func(cfg *RunConfig) (string, error) {
		var log bytes.Buffer
		res, err := TrainWith(context.Background(), cfg, TrainOptions{Log: &log, Resume: dir})
		if err == nil && res.Steps != cfg.Training.MaxSteps {
			t.Errorf("resumed to step %d, want %d", res.Steps, cfg.Training.MaxSteps)
		}
		return log.String(), err
	}

	// Changed in code.
	cfg, err := config.Load(yamlPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Training.Optimizer.LR, cfg.Training.MaxSteps = 0.5, 3
	_, err = resume(cfg)
	if !errors.Is(err, ErrResumeChanged) || !strings.Contains(err.Error(), "training.optimizer.lr: 0.002 → 0.5") ||
		!strings.Contains(err.Error(), "(set in code)") || !strings.Contains(err.Error(), "options.json") || strings.Contains(err.Error(), "training.max_steps:") {
		t.Fatalf("resume at lr 0.5: %v, want ErrResumeChanged naming the learning rate alone", err)
	}

	// Changed by editing config.yaml.
	edited := strings.Replace(strings.Replace(string(orig), "lr: 0.002", "lr: 0.5", 1), "r: 16", "r: 8", 1)
	if edited == string(orig) || os.WriteFile(yamlPath, []byte(edited), 0o644) != nil {
		t.Fatal("cannot edit config.yaml")
	}
	if cfg, err = config.Load(yamlPath); err != nil {
		t.Fatal(err)
	}
	cfg.Training.MaxSteps = 3
	_, err = resume(cfg)
	for _, want := range []string{"training.lora.r: 16 → 8 (" + yamlPath + ":", "training.optimizer.lr: 0.002 → 0.5 (" + yamlPath + ":", "was edited after the run started"} {
		if !errors.Is(err, ErrResumeChanged) || !strings.Contains(err.Error(), want) {
			t.Fatalf("resume with an edited config.yaml: %v, want %q", err, want)
		}
	}
	if now, _ := os.ReadFile(yamlPath); string(now) != edited {
		t.Fatal("a refused resume rewrote config.yaml")
	}

	// The config the run started with, built in code as then, with a
	// longer run: allowed (the evaluation interval cut to the first,
	// shorter run follows max_steps), printed and recorded.
	if err := os.WriteFile(yamlPath, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := resume(tinyTrainConfig(out, 3))
	if err != nil {
		t.Fatalf("resume to 3 steps: %v\n%s", err, log)
	}
	if !strings.Contains(log, "training.max_steps: 2 → 3") {
		t.Errorf("the resume does not say max_steps changed:\n%s", log)
	}
	if now, err := config.Load(yamlPath); err != nil || now.Training.MaxSteps != 3 {
		t.Errorf("config.yaml does not record max_steps 3: %v", err)
	}
}

// trainedTwoSteps trains the tiny run "r" for two steps into a new output
// folder, which it returns (the run is out/r), with its own model cache.
func trainedTwoSteps(t *testing.T) string {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
	if _, err := Train(context.Background(), tinyTrainConfig(out, 2), nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrainResumeWithScheduleAndLoRAPlus: a run with warmup_ratio, a
// schedule's own key and LoRA+ records them in config.yaml (the ratio,
// with warmup_steps as given: the file validates again), resumes with
// them as they were to a longer run, and refuses a resume that changes
// one of them, naming it: they shape the optimisation up to the
// checkpoint.
func TestTrainResumeWithScheduleAndLoRAPlus(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
	cfg := func(steps int) *RunConfig {
		c := tinyTrainConfig(out, steps)
		s := &c.Training.Schedule
		s.Name, s.WarmupRatio, s.NumCycles = "cosine_with_restarts", 0.5, 2
		c.Training.LoRA.LoRAPlusLRRatio = 16
		return c
	}
	if _, err := Train(context.Background(), cfg(2), nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "r")
	rec, err := LoadRunConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Validate(); err != nil {
		t.Fatalf("the run's config.yaml: %v", err)
	}
	s := rec.Training.Schedule
	if s.WarmupRatio != 0.5 || s.WarmupSteps != config.DefaultWarmupSteps || s.NumCycles != 2 || rec.Training.LoRA.LoRAPlusLRRatio != 16 {
		t.Fatalf("config.yaml records schedule %+v, loraplus_lr_ratio %g", s, rec.Training.LoRA.LoRAPlusLRRatio)
	}
	for _, c := range []struct {
		change func(*RunConfig)
		want   string
	}{
		{func(c *RunConfig) { c.Training.LoRA.LoRAPlusLRRatio = 4 }, "training.lora.loraplus_lr_ratio: 16 → 4"},
		{func(c *RunConfig) { c.Training.Schedule.WarmupRatio = 0.25 }, "training.schedule.warmup_ratio: 0.5 → 0.25"},
		{func(c *RunConfig) { c.Training.Schedule.NumCycles = 3 }, "training.schedule.num_cycles: 2 → 3"},
	} {
		changed := cfg(3)
		c.change(changed)
		if _, err := TrainWith(context.Background(), changed, TrainOptions{Resume: dir}); !errors.Is(err, ErrResumeChanged) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("resume with %s: %v, want ErrResumeChanged naming it", c.want, err)
		}
	}
	var log bytes.Buffer
	res, err := TrainWith(context.Background(), cfg(3), TrainOptions{Resume: dir, Log: &log})
	if err != nil {
		t.Fatalf("resume to 3 steps: %v\n%s", err, log.String())
	}
	if res.Steps != 3 || !strings.Contains(log.String(), "warmup 2 steps (warmup_ratio 0.5 of 3 steps), 2 cycles; LoRA+: lora_B at 0.002 × 16") {
		t.Fatalf("resumed to step %d; log:\n%s", res.Steps, log.String())
	}
}
