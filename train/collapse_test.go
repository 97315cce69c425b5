package train_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/train"
)

// TestZeroGradientCollapses: a run whose gradient norm is exactly 0 step
// after step (nothing flows back to the adapter) fails after MaxDeadSteps
// steps with ErrCollapsed and advice, instead of ending "finished".
func TestZeroGradientCollapses(t *testing.T) {
	run, _ := newRun(t, 20)
	run.Cfg.MaxDeadSteps = 3
	run.Forward = func(tp *autograd.Tape, b train.Batch, o nn.ForwardOptions) (nn.Output, error) {
		out, err := run.Model.Forward(tp, b.Batch, o)
		if err == nil && tp != nil {
			out.Loss = tp.Scale(out.Loss, 0) // the loss no longer depends on the weights
		}
		return out, err
	}
	err := run.Fit(context.Background())
	if !errors.Is(err, train.ErrCollapsed) || !strings.Contains(err.Error(), "gradient norm exactly 0 for 3 consecutive steps") ||
		!strings.Contains(err.Error(), "ln(vocab)") || !strings.Contains(err.Error(), "lower the learning rate") {
		t.Fatalf("Fit: %v, want ErrCollapsed after 3 zero-gradient steps", err)
	}
	if run.State.Step != 2 {
		t.Errorf("failed at step %d, want during the third", run.State.Step)
	}
}

// poisonOpt is an optimizer whose update overflows: it leaves a NaN in the
// first parameter, as a huge learning rate does.
type poisonOpt struct{ train.Optimizer }

func (p poisonOpt) Step(params []optim.Param) error {
	if err := p.Optimizer.Step(params); err != nil {
		return err
	}
	params[0].Data[0] = float32(math.NaN())
	return nil
}

// TestNonFiniteWeightsFail: an update that leaves a non-finite adapter
// weight fails the run at once, naming the tensor.
func TestNonFiniteWeightsFail(t *testing.T) {
	run, _ := newRun(t, 5)
	run.Opt = poisonOpt{run.Opt}
	err := run.Fit(context.Background())
	if !errors.Is(err, train.ErrCollapsed) || !strings.Contains(err.Error(), "non-finite values in") || !strings.Contains(err.Error(), "step 1") {
		t.Fatalf("Fit: %v, want ErrCollapsed at step 1 naming the tensor", err)
	}
	if run.State.Step != 0 {
		t.Errorf("a poisoned step was counted: step %d", run.State.Step)
	}
}

// TestHugeLearningRateFails: --lr 1e6 on a tiny model does not end as a
// finished run: it fails, diverged or collapsed, saying to lower the rate.
func TestHugeLearningRateFails(t *testing.T) {
	run, _ := newRun(t, 40)
	run.Cfg.LR, run.Cfg.Schedule, run.Cfg.ClipNorm = 1e6, nil, 0
	err := run.Fit(context.Background())
	if !errors.Is(err, train.ErrCollapsed) && !errors.Is(err, train.ErrDiverged) {
		t.Fatalf("Fit with lr 1e6: %v after %d steps, want a diverged or collapsed run", err, run.State.Step)
	}
	if !strings.Contains(err.Error(), "lower the learning rate (training.optimizer.lr, now 1e+06)") {
		t.Errorf("no advice in %q", err)
	}
	t.Log(err)
}
