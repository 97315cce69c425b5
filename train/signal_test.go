package train_test

import (
	"context"
	"math"
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
