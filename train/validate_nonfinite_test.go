package train_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

// nanValidationFrom makes run's validation logits NaN from its
// validation forward number `from` on (counting from 0), while training
// forwards stay finite: what a validation row that overflows, or a weight
// used only on such rows, does. The training-loss guard never sees it.
func nanValidationFrom(run *train.Trainer, from int) {
	calls := 0
	run.Forward = func(tp *autograd.Tape, b train.Batch, o nn.ForwardOptions) (nn.Output, error) {
		out, err := run.Model.Forward(tp, b.Batch, o)
		if err != nil || tp.Training() {
			return out, err
		}
		if calls >= from {
			out.Logits = tp.Scale(out.Logits, math.NaN())
		}
		calls++
		return out, nil
	}
}

// monitored records the val/loss values that reached the callbacks.
type monitored struct {
	train.Base
	seen []float64
}

func (m *monitored) OnValidationEnd(_ *train.Trainer, v train.Metrics) error {
	m.seen = append(m.seen, v["val/loss"])
	return nil
}

// TestNonFiniteValidationStopsFit: a validation inside Fit whose loss is
// NaN (the training loss still finite) used to reach the callbacks as a
// number: early stopping counted it as a validation that did not improve,
// the metrics log printed "val loss NaN", and the run went on (or stopped
// as "early stopping"), its end reported as a success. It now stops Fit
// with an error wrapping nn.ErrNonFinite that names the step and the
// validation data; no callback sees the NaN, and the checkpoints written
// before it stay (steps 1-3: a step's checkpoint follows its validation,
// so step 4, whose validation failed, has none).
func TestNonFiniteValidationStopsFit(t *testing.T) {
	run := dpRun(t, 8)
	run.Cfg.EvalEvery = 2
	// The val loader has 4 batches: the second validation (after step 4)
	// is the first one that is NaN.
	nanValidationFrom(run, 4)
	dir := t.TempDir()
	seen := &monitored{}
	var log bytes.Buffer
	run.Callbacks = []train.Callback{
		&train.Checkpointer{Dir: dir, Every: 1, KeepLast: 10, Monitor: "val/loss", TopK: 1},
		&train.EarlyStopping{Monitor: "val/loss", Patience: 1},
		&train.MetricsLogger{Sinks: []train.Sink{train.LineSink{W: &log}}},
		seen,
	}
	err := run.Fit(context.Background())
	if !errors.Is(err, nn.ErrNonFinite) {
		t.Fatalf("Fit with a NaN validation loss: %v (stopped at step %d, %q), want an error wrapping nn.ErrNonFinite",
			err, run.State.Step, run.State.StopReason)
	}
	for _, want := range []string{"validation after step 4", "val/loss is NaN", "validation data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if run.State.Step != 4 {
		t.Errorf("stopped at step %d, want 4", run.State.Step)
	}
	if len(seen.seen) != 1 || math.IsNaN(seen.seen[0]) {
		t.Errorf("the callbacks saw val/loss %v, want the first validation's alone", seen.seen)
	}
	if strings.Contains(log.String(), "NaN") {
		t.Errorf("the metrics log printed the NaN:\n%s", log.String())
	}
	for step := 1; step <= 3; step++ {
		if _, err := os.Stat(filepath.Join(dir, train.StepDir(step))); err != nil {
			t.Errorf("checkpoint of step %d: %v", step, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, train.StepDir(4))); err == nil {
		t.Errorf("step 4, whose validation failed, has a checkpoint")
	}
}

// TestNonFiniteValidationAtEpochEnd: the validation at an epoch's end
// (EvalEvery 0) is refused the same way.
func TestNonFiniteValidationAtEpochEnd(t *testing.T) {
	run := dpRun(t, 0)
	run.Cfg.MaxEpochs = 2
	nanValidationFrom(run, 0)
	seen := &monitored{}
	run.Callbacks = []train.Callback{seen}
	err := run.Fit(context.Background())
	if !errors.Is(err, nn.ErrNonFinite) || !strings.Contains(err.Error(), "validation after step") {
		t.Fatalf("Fit with a NaN validation loss at the epoch's end: %v, want an error wrapping nn.ErrNonFinite", err)
	}
	if len(seen.seen) != 0 {
		t.Errorf("the callbacks saw val/loss %v", seen.seen)
	}
}

// TestEarlyStoppingRefusesNaN: called outside Fit (which refuses a
// non-finite validation loss first), early stopping used to count a NaN
// as a validation that did not improve and stop the run as converged.
func TestEarlyStoppingRefusesNaN(t *testing.T) {
	run := &train.Trainer{}
	es := &train.EarlyStopping{Monitor: "val/loss", Patience: 1}
	if err := es.OnValidationEnd(run, train.Metrics{"val/loss": 2}); err != nil {
		t.Fatal(err)
	}
	err := es.OnValidationEnd(run, train.Metrics{"val/loss": math.NaN()})
	if err == nil || run.State.Stop {
		t.Fatalf("a NaN val/loss: err %v, stop %v (%q); want an error and no stop", err, run.State.Stop, run.State.StopReason)
	}
}
