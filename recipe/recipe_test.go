package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/augment"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/track"
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
	loader, err := train.NewRowLoader([]prep.Row{{InputIDs: []int32{1}, Learnt: []bool{true}}}, nil, 1, false, 0, 0, be)
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

// TestManifestRecordsCheckpoints: every checkpoint is a "checkpoint"
// version of manifest.json at its step, with its adapter and checksums
// hashed (none was recorded), and the exported adapter names the step it
// was trained to though no record was logged there (it said step 0).
func TestManifestRecordsCheckpoints(t *testing.T) {
	o := quickOptions(t, "ck")
	o.Steps, o.CheckpointEvery, o.LogEvery = 4, 2, 10
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := track.ReadManifest(filepath.Join(res.RunDir, track.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	type kindStep struct {
		kind string
		step int
	}
	var got []kindStep
	for _, v := range m.Versions {
		got = append(got, kindStep{v.Kind, v.Step})
	}
	want := []kindStep{{"checkpoint", 2}, {"checkpoint", 4}, {"export/peft", 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("manifest versions %v, want %v", got, want)
	}
	ck := m.Versions[1]
	if ck.Path != "checkpoints/"+train.StepDir(4) || len(ck.BaseModel) == 0 {
		t.Errorf("checkpoint version %+v", ck)
	}
	w, ok := ck.WeightsFile()
	if !ok || w.Path != "adapter/adapter_model.safetensors" {
		t.Fatalf("checkpoint weights %+v (files %+v)", w, ck.Files)
	}
	data, err := os.ReadFile(filepath.Join(res.RunDir, ck.Path, w.Path))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != w.SHA256 {
		t.Errorf("recorded sha256 %s is not the file's", w.SHA256)
	}
	if !slices.ContainsFunc(ck.Files, func(f track.FileHash) bool { return f.Path == "checksums.sha256" }) {
		t.Errorf("checkpoint files lack checksums.sha256: %+v", ck.Files)
	}
	if s := summaryOf(t, res.RunDir); s.Steps != 4 || s.Versions != 3 {
		t.Errorf("summary: %d steps, %d versions; want 4, 3", s.Steps, s.Versions)
	}
}
