package recipe

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/track"
)

// sftAdapter trains a short supervised run whose adapter later runs
// continue (training.lora.init_from), with a shape other than the
// defaults (r 8, alpha 24, three targets) so that continuing it with the
// default options shows whether its own shape was taken.
func sftAdapter(t *testing.T) (*Result, string) {
	t.Helper()
	o := quickOptions(t, "sft")
	o.R, o.Alpha, o.Targets = 8, 24, []string{"q_proj", "v_proj", "down_proj"}
	o.Steps, o.LR = 4, 5e-3
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res, res.Adapters["default"]
}

// TestInitAdapterContinuesTraining: a run with InitAdapter starts from
// that adapter's weights (its validation before training is the first
// run's after, bit for bit: same data and split), takes its shape from its
// adapter_config.json whatever the options say, trains it further, and
// saves an adapter of that shape; a run folder given instead of its
// adapter is refused naming the adapter.
func TestInitAdapterContinuesTraining(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	first, dir := sftAdapter(t)
	o := quickOptions(t, "continued")
	o.InitAdapter, o.Steps, o.LR = dir, 3, 5e-3
	var log strings.Builder
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	before, after := res.Before.Val["val/loss"], first.After.Val["val/loss"]
	if math.Float64bits(before) != math.Float64bits(after) {
		t.Errorf("validation before continuing %.10g, the first run's after %.10g: want the same (the adapter's weights)", before, after)
	}
	if res.After.Val["val/loss"] == before {
		t.Error("continuing trained nothing")
	}
	c, err := lora.ReadConfig(filepath.Join(res.Adapters["default"], lora.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if c.R != 8 || c.LoraAlpha != 24 || !slices.Equal(slices.Sorted(slices.Values(c.TargetModules.Names)), []string{"down_proj", "q_proj", "v_proj"}) || c.LoraDropout != o.Dropout {
		t.Errorf("saved adapter: r %d, alpha %g, targets %v, dropout %g; want the first adapter's shape (8, 24, 3 targets) with this run's dropout %g", c.R, c.LoraAlpha, c.TargetModules.Names, c.LoraDropout, o.Dropout)
	}
	if !strings.Contains(log.String(), "adapter: continued from "+dir) || !strings.Contains(log.String(), "LoRA r=8 on") {
		t.Errorf("the log does not say it continues %s with r=8:\n%s", dir, log.String())
	}

	o.RunName, o.InitAdapter = "from-run-folder", first.RunDir
	_, err = Run(context.Background(), o)
	if want := "its adapter is " + dir; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a run folder as init_from: %v, want it to name %q", err, want)
	}
}

// TestInitAdapterIsTheDPOReference: DPO continuing a supervised adapter
// is held to that adapter, frozen (TRL's "ref" copy), not to the base:
// before training the policy is the reference, so the DPO loss is log 2
// exactly; against the base (the adapter turned off) it would not be.
func TestInitAdapterIsTheDPOReference(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, dir := sftAdapter(t)
	o := dpoOptions(t, "dpo-after-sft", true)
	o.InitAdapter = dir
	o.Steps = 2
	var log strings.Builder
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if got := res.Before.Val["val/loss"]; math.Abs(got-math.Ln2) > 1e-6 {
		t.Errorf("DPO loss before training %.8f, want log 2 = %.8f (the policy is its reference)", got, math.Ln2)
	}
	if !strings.Contains(log.String(), "reference: the adapter the run continues, as loaded from "+dir) {
		t.Errorf("the log does not name the reference:\n%s", log.String())
	}
}

// TestInitAdapterChangedRefusesResume: the adapter a run continues is one
// of its inputs (hashed into manifest.json): a resume after it changed is
// refused, naming it. The adapter is a copy out of its run folder (in
// one, its run's record refuses it first, as any load: the end of the
// test).
func TestInitAdapterChangedRefusesResume(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, inRun := sftAdapter(t)
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := os.CopyFS(dir, os.DirFS(inRun)); err != nil {
		t.Fatal(err)
	}
	o := quickOptions(t, "resumable")
	o.InitAdapter, o.Steps, o.CheckpointEvery = dir, 2, 1
	part, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, lora.WeightsFile)
	b, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // one bit of the last weight
	if err := os.WriteFile(weights, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.ResumeDir, o.Steps = part.RunDir, 4
	_, err = Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "or the adapter it continues, "+dir) {
		t.Errorf("resume after the adapter changed: %v, want it refused naming %s", err, dir)
	}
	// In its run folder, the same change is refused before anything
	// loads, naming the file and the run's record.
	if err := os.WriteFile(filepath.Join(inRun, lora.WeightsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.ResumeDir, o.InitAdapter = "", inRun
	_, err = Run(context.Background(), o)
	if !errors.Is(err, track.ErrAdapterChanged) || !strings.Contains(err.Error(), filepath.Join(inRun, lora.WeightsFile)) {
		t.Errorf("init_from an adapter changed in its run folder: %v, want track.ErrAdapterChanged naming it", err)
	}
}
