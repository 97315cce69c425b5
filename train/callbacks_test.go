package train_test

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestLineSinkZeroValue: a zero LineSink prints to standard output rather
// than panicking on its nil writer.
func TestLineSinkZeroValue(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	err = train.LineSink{}.Log(3, train.Metrics{"train/loss": 1.5, "train/lr": 1e-3})
	w.Close()
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	if !strings.Contains(string(out), "step     3  loss 1.5000") {
		t.Errorf("printed %q", out)
	}
}

// stepHooks records the steps at which its hooks run.
type stepHooks struct {
	train.Base
	starts, ends []int
}

func (s *stepHooks) OnStepStart(t *train.Trainer) error {
	s.starts = append(s.starts, t.State.Step)
	return nil
}

func (s *stepHooks) OnStepEnd(t *train.Trainer, _ train.Metrics) error {
	s.ends = append(s.ends, t.State.Step)
	return nil
}

// TestStepStarterRunsBeforeEachStep: a StepStarter's hook runs as each
// step begins, before its OnStepEnd.
func TestStepStarterRunsBeforeEachStep(t *testing.T) {
	tr, _ := newRun(t, 3)
	h := &stepHooks{}
	tr.Callbacks = append(tr.Callbacks, h)
	if err := tr.Fit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.starts, []int{0, 1, 2}) || !slices.Equal(h.ends, []int{1, 2, 3}) {
		t.Errorf("steps started at %v and ended at %v, want [0 1 2] and [1 2 3]", h.starts, h.ends)
	}
}
