package train_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/train"
)

// cancelOnNext cancels a context at the n-th batch it hands out.
type cancelOnNext struct {
	*train.RowLoader
	n, calls int
	cancel   func()
}

func (c *cancelOnNext) Next() (train.Batch, error) {
	c.calls++
	if c.calls == c.n {
		c.cancel()
	}
	return c.RowLoader.Next()
}

// TestCancelBetweenMicroBatches: Ctrl-C during a step of several
// micro-batches stops before the next micro-batch, and the step is undone
// (no update, loader position back), so resuming repeats it exactly.
func TestCancelBetweenMicroBatches(t *testing.T) {
	run, a := newRun(t, 3)
	run.Cfg.GradAccum = 4
	before := a.Weights()
	ctx, cancel := context.WithCancel(context.Background())
	run.Train = &cancelOnNext{RowLoader: run.Train.(*train.RowLoader), n: 2, cancel: cancel}
	if err := run.Fit(ctx); err != nil {
		t.Fatal(err)
	}
	if run.State.Step != 0 || run.State.StopReason != "interrupted" {
		t.Fatalf("stopped at step %d (%q), want step 0, interrupted", run.State.Step, run.State.StopReason)
	}
	if e, i := run.Train.Position(); e != 0 || i != 0 || run.State.BatchIndex != 0 {
		t.Errorf("loader at epoch %d batch %d (state %d), want back at 0", e, i, run.State.BatchIndex)
	}
	for name, w := range a.Weights() {
		for i, v := range w.Data {
			if math.Float32bits(v) != math.Float32bits(before[name].Data[i]) {
				t.Fatalf("%s changed by an abandoned step", name)
			}
		}
	}
	for name, p := range run.Params {
		if p.Grad != nil {
			for _, g := range p.Grad.F32() {
				if g != 0 {
					t.Fatalf("%s keeps the abandoned step's gradient", name)
				}
			}
		}
	}
}

// validations counts the validations that reached the callbacks.
type validations struct {
	train.Base
	n int
}

func (v *validations) OnValidationEnd(*train.Trainer, train.Metrics) error { v.n++; return nil }

// TestCancelDuringValidation: Ctrl-C during a validation inside Fit stops
// it at the next batch; the step before it is complete and checkpointed
// (as an interrupt between steps saves it), and the cut-short validation
// reaches no callback.
func TestCancelDuringValidation(t *testing.T) {
	run := dpRun(t, 6)
	run.Cfg.EvalEvery = 2
	ctx, cancel := context.WithCancel(context.Background())
	// The second validation's second batch: the val loader has 4 batches.
	run.Val = &cancelOnNext{RowLoader: run.Val.(*train.RowLoader), n: 4 + 2, cancel: cancel}
	seen := &validations{}
	dir := t.TempDir()
	run.Callbacks = []train.Callback{&train.Checkpointer{Dir: dir, Every: 100, KeepLast: 5}, seen}
	if err := run.Fit(ctx); err != nil {
		t.Fatal(err)
	}
	if run.State.Step != 4 || run.State.StopReason != "interrupted" {
		t.Fatalf("stopped at step %d (%q), want step 4, interrupted", run.State.Step, run.State.StopReason)
	}
	if seen.n != 1 {
		t.Errorf("%d validations reached the callbacks, want 1 (the second was cut short)", seen.n)
	}
	if _, err := os.Stat(filepath.Join(dir, train.StepDir(4))); err != nil {
		t.Errorf("no checkpoint of step 4: %v", err)
	}

	// Called directly, a cancelled context ends it with ctx's error.
	_, err := run.Validate(ctx, run.Val)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Validate with a cancelled context: %v, want context.Canceled", err)
	}
	// It names what stopped and no command: ftune eval validates too, and
	// printed "train: validation stopped"; the caller says its own context.
	if err == nil || !strings.HasPrefix(err.Error(), "validation stopped after 0 batches: ") {
		t.Errorf("Validate with a cancelled context: %v, want it to begin \"validation stopped after 0 batches: \"", err)
	}
}
