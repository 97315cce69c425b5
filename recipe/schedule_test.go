package recipe

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/track"
)

// TestWarmupRatioByEpochs: a run sized by max_epochs learns its steps
// from the data; warmup_ratio is applied to them there (transformers'
// ceil(ratio × steps)), the log says the warmup used, and every step
// trains at warmup_stable_decay's rate for that warmup: train/lr of step
// s (1-based) is lr × the schedule at s-1 steps taken.
func TestWarmupRatioByEpochs(t *testing.T) {
	o := quickOptions(t, "ratio")
	// An epoch of the smallest bundled subject: 25 steps (8 warmup, 9
	// stable, 8 decay), all three phases, at under half of chemistry's.
	o.Subjects = []string{"us-history"}
	o.Steps, o.Epochs, o.BatchSize, o.LogEvery = 0, 1, 8, 1
	o.WarmupSteps, o.WarmupRatio = 10, 0.3 // the ratio replaces the steps
	o.Schedule, o.DecayRatio, o.DecayType, o.MinLRRate = "warmup_stable_decay", 0.3, "linear", 0.1
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	total := res.Steps
	if total < 4 {
		t.Fatalf("an epoch of %d steps: too few to see the phases", total)
	}
	w, d := int(math.Ceil(0.3*float64(total))), int(math.Ceil(0.3*float64(total)))
	want := fmt.Sprintf("warmup %d steps (warmup_ratio 0.3 of %d steps), %d stable, %d decay steps (linear, down to %g)", w, total, total-w-d, d, o.LR*0.1)
	if !strings.Contains(log.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, log.String())
	}
	recs, err := track.ReadMetrics(filepath.Join(res.RunDir, track.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	sched := optim.WarmupStableDecay(w, total-w-d, d, optim.DecayLinear, 0.1)
	seen := 0
	for _, r := range recs {
		lr, ok := r.Metrics["train/lr"]
		if !ok {
			continue
		}
		seen++
		if wantLR := o.LR * sched.LR(r.Step-1); math.Abs(lr-wantLR) > 1e-12 {
			t.Errorf("step %d: train/lr %g, want %g", r.Step, lr, wantLR)
		}
	}
	if seen != total {
		t.Fatalf("%d steps logged train/lr, want %d", seen, total)
	}
}

// TestLoRAPlusFirstStep: one AdamW step from the adapter's start (lora_B
// zero, so every gradient is the same with and without LoRA+) moves
// lora_B 16 times as far with loraplus_lr_ratio 16, bit for bit (AdamW's
// first step is lr × a quotient of the gradient: × 16 is exact), and
// DoRA's magnitudes too (PEFT's LoRA+ puts one-dimensional parameters in
// the B group; float32 sums of a start and a step: 1e-3), while lora_A
// (no gradient yet) and the lm_head copy (modules_to_save: PEFT's group A)
// move alike.
func TestLoRAPlusFirstStep(t *testing.T) {
	// run trains one step at lr with LoRA+ ratio (0: off) and gives the
	// adapter's tensors.
	run := func(name string, ratio, lr float64) map[string]lora.Tensor {
		o := quickOptions(t, name)
		o.Steps, o.Schedule, o.DoRA, o.LoRAPlusLRRatio, o.LR = 1, "constant", true, ratio, lr
		o.ModulesToSave = []string{"lm_head"}
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		_, w, err := lora.LoadAdapter(res.Adapters["default"])
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	lr := Defaults().LR
	plain, plus := run("plus0", 0, lr), run("plus16", 16, lr)
	// The start, to measure how far each tensor moved: a step at a
	// learning rate too small to change a float32 value.
	start := run("start", 0, 1e-30)
	var nB, nMag int
	for name, p := range plain {
		q := plus[name].Data
		switch {
		case strings.Contains(name, "lora_B"):
			nB++
			for i, v := range p.Data {
				if q[i] != 16*v {
					t.Fatalf("%s[%d]: %g with LoRA+ 16, %g without (want 16×)", name, i, q[i], v)
				}
			}
			if slices.Equal(q, make([]float32, len(q))) {
				t.Fatalf("%s did not move", name)
			}
		case strings.Contains(name, "lora_magnitude_vector"):
			nMag++
			m0 := start[name].Data
			for i, v := range p.Data {
				dPlain, dPlus := float64(v)-float64(m0[i]), float64(q[i])-float64(m0[i])
				if math.Abs(dPlus-16*dPlain) > 1e-3*math.Abs(16*dPlain)+1e-6 {
					t.Fatalf("%s[%d]: moved %g with LoRA+ 16, %g without (want 16×)", name, i, dPlus, dPlain)
				}
			}
		default: // lora_A, lm_head's copy
			if !slices.Equal(p.Data, q) {
				t.Fatalf("%s moved differently with LoRA+ (its rate is lr)", name)
			}
			if !strings.Contains(name, "lora_A") && slices.Equal(p.Data, start[name].Data) {
				t.Fatalf("%s did not move", name)
			}
		}
	}
	if nB == 0 || nMag == 0 || len(plain) != len(plus) {
		t.Fatalf("%d lora_B, %d magnitudes in %d tensors (%d with LoRA+)", nB, nMag, len(plain), len(plus))
	}
}

// TestLoRAPlusResumesExactly: with per-subject adapters (names prefixed
// by the subject), DoRA, LoRA+, warmup_ratio and cosine_with_restarts, a
// run interrupted after a checkpoint and resumed trains as the
// uninterrupted run: the same losses, bit for bit, so each group's rate
// and optimizer state came back.
func TestLoRAPlusResumesExactly(t *testing.T) {
	o := MultiTask(quickOptions(t, "full"), []string{"chemistry", "geography"}, true)
	o.Steps, o.CheckpointEvery, o.LogEvery = 8, 1, 1
	o.DoRA, o.LoRAPlusLRRatio = true, 4
	o.WarmupRatio, o.Schedule, o.NumCycles = 0.25, "cosine_with_restarts", 2
	full, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.RunName, o.Log = "part", &cancelAfter{cancel: cancel, marker: "step     3 "}
	part, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if part.Stopped != "interrupted" || part.Steps >= 8 {
		t.Fatalf("stopped %q at step %d, want interrupted before 8", part.Stopped, part.Steps)
	}
	o.ResumeDir, o.Log = part.RunDir, nil
	resumed, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	got := append(append([]float64(nil), part.Losses...), resumed.Losses[len(resumed.Losses)-(8-part.Steps):]...)
	if resumed.Steps != 8 || !slices.Equal(got, full.Losses) {
		t.Errorf("losses interrupted at %d and resumed %v, uninterrupted %v", part.Steps, got, full.Losses)
	}
}

// TestFromConfigWarmupRatio: with warmup_ratio the ratio reaches the
// options and config.yaml records it beside warmup_steps as given (the
// default, not cut to the short run, with no note: the ratio decides),
// so that the file validates again; the warmup is the ratio's.
func TestFromConfigWarmupRatio(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := options(t, []string{"training.max_steps=20", "training.schedule.warmup_ratio=0.3"})
	if o.WarmupRatio != 0.3 || o.warmupSteps() != 6 || len(o.Notices) != 0 {
		t.Fatalf("warmup ratio %g, steps %d, notices %q; want 0.3, 6 (ceil(0.3 × 20)), none", o.WarmupRatio, o.warmupSteps(), o.Notices)
	}
	cfg := config.Default()
	if err := config.Apply(cfg, []string{"training.max_steps=20", "training.schedule.warmup_ratio=0.3"}); err != nil {
		t.Fatal(err)
	}
	o, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := config.Parse(o.Config, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Validate(); err != nil {
		t.Fatalf("recorded config: %v", err)
	}
	if s := rec.Training.Schedule; s.WarmupRatio != 0.3 || s.WarmupSteps != config.DefaultWarmupSteps {
		t.Fatalf("config.yaml records warmup_ratio %g, warmup_steps %d", s.WarmupRatio, s.WarmupSteps)
	}
}

// TestScheduleNamesAgree: config accepts the schedule names optim builds
// (it mirrors them rather than import the engine), and each reaches a
// schedule through the options; a decay that does not fit the run, known
// only once max_epochs gives the steps, is refused naming decay_ratio.
func TestScheduleNamesAgree(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, name := range optim.ScheduleNames {
		sets := []string{"training.schedule.name=" + name}
		if name == "cosine_with_min_lr" {
			sets = append(sets, "training.schedule.min_lr_rate=0.1")
		}
		o := options(t, sets)
		if _, err := o.schedule(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	o := Defaults()
	o.Steps, o.Schedule, o.DecayRatio = 12, "warmup_stable_decay", 0.5 // 10 warmup and 6 decay steps
	if _, err := o.schedule(); err == nil || !strings.Contains(err.Error(), "decay_ratio 0.5") {
		t.Errorf("a decay longer than the run after its warmup: %v", err)
	}
}

// TestFitWarmupByEpochs: a run sized by epochs holds its warmup to the
// steps the data gives, as max_steps runs are held: the default is scaled
// to a tenth of a short run, saying so, and a longer warmup the user set
// is refused (an 8-step epoch run warmed up for 20 steps and never
// reached its learning rate); a ratio or a constant schedule is left as
// it is.
func TestFitWarmupByEpochs(t *testing.T) {
	for _, c := range []struct {
		name          string
		o             Options
		want          int
		note, refused string
	}{
		{"default scaled", Options{Steps: 24, Epochs: 1, WarmupSteps: 10, WarmupIsDefault: true, Schedule: "linear"}, 2, "the run warms up for 2 (a tenth of its steps)", ""},
		{"default fits", Options{Steps: 100, Epochs: 2, WarmupSteps: 10, WarmupIsDefault: true, Schedule: "cosine"}, 10, "", ""},
		{"set, longer than the run", Options{Steps: 8, Epochs: 1, WarmupSteps: 20, Schedule: "linear"}, 20, "", "warmup_steps 20 is more than the run's 8 steps"},
		{"set, within the run", Options{Steps: 8, Epochs: 1, WarmupSteps: 5, Schedule: "linear"}, 5, "", ""},
		{"ratio", Options{Steps: 8, Epochs: 1, WarmupSteps: 10, WarmupIsDefault: true, WarmupRatio: 0.1, Schedule: "linear"}, 10, "", ""},
		{"constant", Options{Steps: 8, Epochs: 1, WarmupSteps: 20, Schedule: "constant"}, 20, "", ""},
	} {
		var log strings.Builder
		err := c.o.fitWarmup(&log)
		if c.refused != "" {
			if err == nil || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("%s: %v, want refused with %q", c.name, err, c.refused)
			}
			continue
		}
		if err != nil || c.o.WarmupSteps != c.want || (c.note == "") != (log.Len() == 0) || !strings.Contains(log.String(), c.note) {
			t.Errorf("%s: warmup %d, %v, log %q; want %d, note %q", c.name, c.o.WarmupSteps, err, log.String(), c.want, c.note)
		}
	}
}
