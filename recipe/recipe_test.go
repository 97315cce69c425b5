package recipe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/augment"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

const (
	tinyBase = "../assets/models/tiny-base"
	subjects = "../assets/data/subjects"
)

// TestPerSubjectRun trains one adapter per subject in one pass (rows routed
// to their subject's adapter) with NEFTune on, and exports every adapter.
func TestPerSubjectRun(t *testing.T) {
	o := MultiTask(Defaults(), []string{"chemistry", "geography"}, true)
	o.ModelDir, o.DataRoot, o.OutDir, o.RunName = tinyBase, subjects, t.TempDir(), "ps"
	o.Steps, o.BatchSize, o.SeqLen, o.WarmupSteps, o.EvalEvery = 2, 2, 96, 0, 0
	o.EvalQuestions, o.Samples, o.CheckpointEvery, o.NEFTuneAlpha = 1, 1, 0, 5
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Adapters) != 2 || res.Steps != 2 {
		t.Fatalf("adapters %v after %d steps", res.Adapters, res.Steps)
	}
	for name, dir := range res.Adapters {
		if filepath.Base(dir) != name {
			t.Errorf("adapter %s exported to %s", name, dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "adapter_model.safetensors")); err != nil {
			t.Error(err)
		}
	}
	if res.Before.Val["val/chemistry/loss"] == 0 || res.After.Val["val/geography/loss"] == 0 {
		t.Errorf("per-subject validation metrics missing: %v", res.After.Val)
	}
}

// TestNEFTuneHookOnlyInTraining: noise is added when a tape records
// (training) and never in inference; the gradient passes through unchanged.
func TestNEFTuneHookOnlyInTraining(t *testing.T) {
	be := tensor.CPUDefault()
	loader, err := train.NewRowLoader([]prep.Row{{InputIDs: []int32{1}, Labels: []int32{1}}}, nil, 1, false, 0, 0, be)
	if err != nil {
		t.Fatal(err)
	}
	hook := neftuneHook(augment.NEFTune{Alpha: 5, Seed: 1}, &train.Trainer{Train: loader})
	x := autograd.Param(tensor.FromF32(be, make([]float32, 2*3*4), 2, 3, 4), "emb")
	if got := hook(nil, x); got != x {
		t.Fatal("inference forward was changed")
	}
	tp := autograd.NewTape()
	y := hook(tp, x)
	changed := false
	bound := 5 / float32(3.4641016) // alpha/sqrt(seq·dim) = 5/√12
	for _, v := range y.Value.F32() {
		changed = changed || v != 0
		if v < -bound || v > bound {
			t.Fatalf("noise %g outside ±%g", v, bound)
		}
	}
	if !changed {
		t.Fatal("training forward got no noise")
	}
	if err := tp.Backward(tp.SumAll(y)); err != nil {
		t.Fatal(err)
	}
	for _, g := range x.Grad.F32() {
		if g != 1 {
			t.Fatalf("gradient through the noise is %g, want 1", g)
		}
	}
}

// TestInterruptedRunCheckpoints: a cancelled context (Ctrl-C) ends training
// after the current step with a checkpoint from which --resume continues.
func TestInterruptedRunCheckpoints(t *testing.T) {
	o := Defaults()
	o.ModelDir, o.DataRoot, o.OutDir, o.RunName = tinyBase, subjects, t.TempDir(), "int"
	o.Steps, o.BatchSize, o.SeqLen, o.WarmupSteps, o.EvalEvery, o.EvalQuestions, o.Samples = 50, 2, 96, 0, 0, 0, 0
	o.Subjects = []string{"us-history"}
	ctx, cancel := context.WithCancel(context.Background())
	o.Log = &cancelAfter{cancel: cancel, marker: "step     5 "}
	o.LogEvery = 5
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "interrupted" || res.Steps < 5 || res.Steps >= 50 {
		t.Fatalf("stopped %q at step %d, want interrupted soon after step 5", res.Stopped, res.Steps)
	}
	ck := filepath.Join(res.RunDir, "checkpoints", train.StepDir(res.Steps))
	if _, err := os.Stat(ck); err != nil {
		t.Fatalf("no checkpoint at the interrupted step: %v", err)
	}
	o.ResumeDir, o.Log = res.RunDir, nil
	o.Steps = res.Steps + 2
	again, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Steps != res.Steps+2 || again.Stopped != "" {
		t.Fatalf("resumed run ended at step %d (%q), want %d", again.Steps, again.Stopped, res.Steps+2)
	}
}

// cancelAfter cancels a context when the log shows a marker line.
type cancelAfter struct {
	cancel func()
	marker string
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.marker)) {
		c.cancel()
	}
	return len(p), nil
}
