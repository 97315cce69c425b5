package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	t.Setenv("FT_RUNS", "/scratch/runs")
	for _, tc := range []struct {
		set  string
		get  func(c *RunConfig) any
		want any
	}{
		{"training.optimizer.lr=2e-4", func(c *RunConfig) any { return c.Training.Optimizer.LR }, 2e-4},
		{"training.optimizer.lr = 3e-4", func(c *RunConfig) any { return c.Training.Optimizer.LR }, 3e-4},
		{"training.max_steps=40", func(c *RunConfig) any { return c.Training.MaxSteps }, 40},
		{"training.gradient_checkpointing=true", func(c *RunConfig) any { return c.Training.GradientCheckpointing }, true},
		{"training.lora.targets=[q_proj, v_proj]", func(c *RunConfig) any { return c.Training.LoRA.Targets }, []string{"q_proj", "v_proj"}},
		{"training.lora.targets=all-linear", func(c *RunConfig) any { return c.Training.LoRA.Targets }, []string{"all-linear"}},
		{"training.optimizer.betas=[0.9,0.95]", func(c *RunConfig) any { return c.Training.Optimizer.Betas }, []float64{0.9, 0.95}},
		{"data.weights.math=2", func(c *RunConfig) any { return c.Data.Weights }, map[string]float64{"math": 2}},
		{"data.weights.algebra.v2=0.5", func(c *RunConfig) any { return c.Data.Weights }, map[string]float64{"algebra.v2": 0.5}},
		{"training.lora={r: 4, alpha: 8}", func(c *RunConfig) any { return [2]float64{float64(c.Training.LoRA.R), c.Training.LoRA.Alpha} }, [2]float64{4, 8}},
		{"training.tracking.output_dir=$FT_RUNS/x", func(c *RunConfig) any { return c.Training.Tracking.OutputDir }, "/scratch/runs/x"},
		{"training.tracking.run_name=$NOT_A_PATH_FIELD", func(c *RunConfig) any { return c.Training.Tracking.RunName }, "$NOT_A_PATH_FIELD"},
		{"training.max_time=45m", func(c *RunConfig) any { return c.Training.MaxTime }, Duration(45 * time.Minute)},
		{"training.tracking.run_name=", func(c *RunConfig) any { return c.Training.Tracking.RunName }, ""},
		{"data.seed=7", func(c *RunConfig) any { return c.Data.Seed }, uint64(7)},
		{"model.path=a=b", func(c *RunConfig) any { return c.Model.Path }, "a=b"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			c := Default()
			if err := Apply(c, []string{tc.set}); err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestApplyLaterWins(t *testing.T) {
	c := Default()
	if err := Apply(c, []string{"training.seed=1", "training.seed=2"}); err != nil {
		t.Fatal(err)
	}
	if c.Training.Seed != 2 || c.Where("training.seed") != "--set training.seed=2" {
		t.Fatalf("seed %d from %s", c.Training.Seed, c.Where("training.seed"))
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct {
		set, want string
		kind      error
	}{
		{"training.lr=2e-4", "--set training.lr=2e-4: unknown key `lr` in training; did you mean `training.optimizer.lr`?", ErrUnknownKey},
		{"training.learning_rate=1", "did you mean `training.optimizer.lr`?", ErrUnknownKey},
		{"training.optimizer.learning_rate=1", "unknown key `learning_rate` in training.optimizer; did you mean `training.optimizer.lr`?", ErrUnknownKey},
		{"training.lora.rr=4", "did you mean `training.lora.r`?", ErrUnknownKey},
		{"training.tiled_mlp=true", "did you mean `training.mlp_chunk_tokens`?", ErrUnknownKey},
		{"training.activation_offloading=true", "did you mean `training.offload_checkpoints`?", ErrUnknownKey},
		{"training.warmup_ratio=0.1", "did you mean `training.schedule.warmup_ratio`?", ErrUnknownKey},
		{"training.schedule.lr_scheduler_kwargs={min_lr_rate: 0.1}", "unknown key `lr_scheduler_kwargs` in training.schedule; did you mean `training.schedule`?", ErrUnknownKey},
		{"training.schedule.min_lr_ratio=0.1", "did you mean `training.schedule.min_lr_rate`?", ErrUnknownKey},
		{"training.loraplus_lr_ratio=16", "did you mean `training.lora.loraplus_lr_ratio`?", ErrUnknownKey},
		{"trainig.max_steps=4", "unknown key `trainig` at the top level; did you mean `training.max_steps`?", ErrUnknownKey},
		{"training.max_steps.x=4", "training.max_steps: is a single value; it has no key `x`", ErrUnknownKey},
		{"training.max_steps=many", `--set training.max_steps=many: training.max_steps: want a whole number, got "many"`, ErrBadValue},
		{"training.max_steps", "--set training.max_steps: want key.path=value", ErrBadValue},
		{"=3", "want key.path=value", ErrBadValue},
		{"training.lora=[", "value is not valid YAML", ErrBadValue},
		{"data.weights.math=lots", `data.weights.math: want a number, got "lots"`, ErrBadValue},
		{"training.lora={r: 4, rank: 3}", "unknown key `rank` in training.lora; did you mean `r`?", ErrUnknownKey},
		{"model.path=$FT_UNSET_VAR/m", "environment variable $FT_UNSET_VAR is not set", ErrBadValue},
	} {
		t.Run(tc.set, func(t *testing.T) {
			err := Apply(Default(), []string{tc.set})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %s", err, tc.want)
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v is not %v", err, tc.kind)
			}
		})
	}
}

func TestApplyFlag(t *testing.T) {
	c := Default()
	if err := ApplyFlag(c, "--max-steps", "training.max_steps", "3"); err != nil {
		t.Fatal(err)
	}
	if c.Training.MaxSteps != 3 || c.Where("training.max_steps") != "--max-steps 3" {
		t.Fatalf("max_steps %d from %q", c.Training.MaxSteps, c.Where("training.max_steps"))
	}
	// A short smoke run with every other default must be valid.
	if err := c.Validate(); err != nil {
		t.Fatalf("--max-steps 3 on the defaults: %v", err)
	}
	c2 := c.Clone()
	if err := Apply(c2, []string{"training.schedule.warmup_steps=5"}); err != nil {
		t.Fatal(err)
	}
	err := c2.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "--set training.schedule.warmup_steps=5: training.schedule.warmup_steps: 5 warmup steps exceed training.max_steps (3)") {
		t.Fatalf("got %v", err)
	}
	err = ApplyFlag(c, "--device", "training.device", "[gpu")
	if err == nil || !strings.HasPrefix(err.Error(), "--device [gpu: training.device: value is not valid YAML") {
		t.Fatalf("got %v", err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/run.yaml"
	if err := os.WriteFile(path, []byte("training:\n  max_steps: 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(path, []string{"training.optimizer.lr=1e-3"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Training.MaxSteps != 30 || c.Training.Optimizer.LR != 1e-3 || c.File() != path {
		t.Fatalf("got steps %d lr %v file %q", c.Training.MaxSteps, c.Training.Optimizer.LR, c.File())
	}
	if _, err := Resolve(path, []string{"training.schedule.warmup_steps=40"}); err == nil || !strings.Contains(err.Error(), "warmup") {
		t.Fatalf("Resolve should validate after --set, got %v", err)
	}
	if c, err := Resolve("", nil); err != nil || !reflect.DeepEqual(plain(c), plain(Default())) {
		t.Fatalf("Resolve with no file: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	training := []string{"lora", "quantization", "optimizer", "schedule", "batch_size", "grad_accum", "max_steps", "max_epochs"}
	for _, tc := range []struct {
		key, section string
		cands        []string
		want         string
	}{
		{"learning_rate", "training.optimizer", []string{"name", "lr"}, "lr"},
		{"learning_rate", "training", training, "training.optimizer.lr"},
		{"max_step", "training", training, "max_steps"},
		{"maxsteps", "training", training, "max_steps"},
		{"optimiser", "training", training, "optimizer"},
		{"grad", "training", training, "grad_accum"},
		{"lr", "training", training, "training.optimizer.lr"},
		{"warmup_steps", "training", training, "training.schedule.warmup_steps"},
		{"alpha", "training", training, "training.lora.alpha"},
		{"qqqqq", "training", training, ""},
		{"x", "training", training, ""},
		{"LEARNING_RATE", "training.optimizer", []string{"lr"}, "lr"},
	} {
		if got := suggest(tc.key, tc.section, tc.cands); got != tc.want {
			t.Errorf("suggest(%q in %s) = %q, want %q", tc.key, tc.section, got, tc.want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"modle", "model", 1}, {"lr", "lr", 0}, {"ab", "ba", 1}, {"abc", "ca", 3},
	} {
		if got := levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := levenshtein(tc.b, tc.a); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}

func ExampleApply() {
	cfg := Default()
	err := Apply(cfg, []string{"training.optimizer.lr=1e-4", "training.lora.r=16"})
	fmt.Println(cfg.Training.Optimizer.LR, cfg.Training.LoRA.R, err)
	fmt.Println(Apply(cfg, []string{"training.lr=1e-4"}))
	// Output:
	// 0.0001 16 <nil>
	// --set training.lr=1e-4: unknown key `lr` in training; did you mean `training.optimizer.lr`?
}

func ExampleParse() {
	_, err := Parse([]byte("training:\n  optimizer:\n    learning_rate: 3e-4\n"), "run.yaml")
	fmt.Println(err)
	// Output:
	// run.yaml:3: unknown key `learning_rate` in training.optimizer; did you mean `lr`?
}

func ExampleWriteInit() {
	var b strings.Builder
	if err := WriteInit(&b); err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(b.String(), "\n")
	fmt.Println(strings.Join(lines[4:8], "\n"))
	// Output:
	// # The base model.
	// model:
	//   # Hugging Face model folder, or "tiny-base" for the embedded test model.
	//   path: tiny-base
}
