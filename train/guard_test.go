package train_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

// nanAfter makes run's loss NaN from its micro-batch number `from` on
// (counting from 0), as NaN base weights or an input that overflows do.
func nanAfter(run *train.Trainer, from int) {
	calls := 0
	run.Forward = func(tp *autograd.Tape, b train.Batch, o nn.ForwardOptions) (nn.Output, error) {
		out, err := run.Model.Forward(tp, b.Batch, o)
		if err == nil && tp != nil {
			if calls >= from {
				out.Loss = tp.Scale(out.Loss, math.NaN())
			}
			calls++
		}
		return out, err
	}
}

// TestGuardNaNFromTheStartBlamesTheForward: a loss that is NaN from the
// very first step used to fail with "lower the learning rate", though no
// update had been applied: the advice now says the forward pass is
// non-finite with the weights as loaded, and does not name the rate.
func TestGuardNaNFromTheStartBlamesTheForward(t *testing.T) {
	run, _ := newRun(t, 20)
	run.Cfg.MaxBadSteps = 3
	nanAfter(run, 0)
	err := run.Fit(context.Background())
	if !errors.Is(err, train.ErrDiverged) {
		t.Fatalf("Fit: %v, want ErrDiverged", err)
	}
	for _, want := range []string{"no update was ever applied", "forward pass gives a non-finite loss", "base model's weights", "the data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "lower the learning rate") {
		t.Errorf("error %q blames the learning rate before any update", err)
	}
}

// TestGuardNaNAfterUpdatesBlamesTheRate: once updates were applied, a run
// whose loss turns NaN is still told to lower the learning rate.
func TestGuardNaNAfterUpdatesBlamesTheRate(t *testing.T) {
	run, _ := newRun(t, 20)
	run.Cfg.MaxBadSteps = 3
	nanAfter(run, 2*run.Cfg.GradAccum) // two good steps first
	err := run.Fit(context.Background())
	if !errors.Is(err, train.ErrDiverged) || !strings.Contains(err.Error(), "lower the learning rate (training.optimizer.lr, now 0.005)") {
		t.Fatalf("Fit: %v, want ErrDiverged advising a lower learning rate", err)
	}
	if run.State.Step != 2 {
		t.Errorf("diverged at step %d, want after 2", run.State.Step)
	}
}
