package recipe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
)

// TestEarlyStoppingShorterThanAnEpochRefused: early stopping with
// training.eval.every 0 (validation at epoch ends) and max_steps within
// the first epoch never validated during training, so it never acted,
// silently; config.Validate cannot tell (the epoch's length is the
// data's). The run refuses it, with the numbers and what to set, before
// it makes a run folder.
func TestEarlyStoppingShorterThanAnEpochRefused(t *testing.T) {
	o := options(t, []string{"training.max_steps=2", "training.eval.every=0", "training.early_stopping.enabled=true",
		"training.early_stopping.patience=1", "training.batch_size=2", "data.max_length=64",
		"training.eval.generation.questions=0", "data.subjects=[chemistry]"})
	o.ModelDir, o.DataRoot, o.OutDir, o.RunName = tinyBase, subjects, t.TempDir(), "es"
	var log bytes.Buffer
	o.Log = &log
	_, err := Run(context.Background(), o)
	if err == nil {
		t.Fatal("early stopping that no validation reaches was accepted")
	}
	t.Log(err)
	for _, want := range []string{"training.early_stopping.enabled", "training.eval.every 0", "an epoch of this data is", "max_steps 2", "set training.eval.every 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(o.OutDir, "es")); !os.IsNotExist(err) {
		t.Errorf("a refused run left a run folder: %v", err)
	}
	if strings.Contains(log.String(), "== training") {
		t.Errorf("the refused run trained:\n%s", log.String())
	}
}

// fakeSession has 10 training rows in batches of 2: 5 steps an epoch
// with grad_accum 1 (3 with grad_accum 2), and one validation row.
func fakeSession(o Options) (*session, *bytes.Buffer) {
	var log bytes.Buffer
	return &session{o: o, log: &log, data: &dataset{train: make([]prep.Row, 10), val: make([]prep.Row, 1)}}, &log
}

// TestCheckValidationReach: the refusal's boundaries. Validation at the
// end of epoch k counts when it comes before the last step.
func TestCheckValidationReach(t *testing.T) {
	base := Defaults()
	base.BatchSize, base.GradAccum, base.EvalEvery, base.Monitor, base.TopK = 2, 1, 0, "val/loss", 1
	es := func(o *Options) { o.EarlyStopPatience = 1 }
	for _, c := range []struct {
		name         string
		set          func(*Options)
		steps        int
		epochs       int // > 0: epochs decide (steps = epochs × 5)
		refuse, note string
	}{
		{name: "no early stopping, default top_k", set: func(*Options) {}, steps: 2},
		{name: "early stopping, max_steps an epoch", set: es, steps: 5, refuse: "an epoch of this data is 5 steps (10 training rows, batch_size 2, grad_accum 1) and the run is max_steps 5"},
		{name: "early stopping, max_steps under an epoch", set: es, steps: 3, refuse: "set training.eval.every N (between 1 and 2)"},
		{name: "early stopping, one validation", set: es, steps: 6, note: "patience 1 needs 2 validations"},
		{name: "early stopping, two validations", set: es, steps: 11},
		{name: "grad_accum lengthens the epoch", set: func(o *Options) { es(o); o.GradAccum = 2 }, steps: 3, refuse: "an epoch of this data is 3 steps"},
		{name: "top_k 3, max_steps under an epoch", set: func(o *Options) { o.TopK = 3 }, steps: 4, refuse: "training.checkpointing.top_k: top_k 3 keeps the checkpoints val/loss ranks best"},
		{name: "top_k 0", set: func(o *Options) { o.TopK = 0 }, steps: 4},
		{name: "top_k 3 without a monitor", set: func(o *Options) { o.TopK, o.Monitor = 3, "" }, steps: 4},
		{name: "max_epochs 1", set: es, epochs: 1, refuse: "max_epochs 1 (5 steps)"},
		{name: "max_epochs 3", set: es, epochs: 3},
		{name: "max_epochs 1, eval.every past it", set: func(o *Options) { es(o); o.EvalEvery = 80 }, epochs: 1, refuse: "lower training.eval.every below 5"},
		{name: "max_epochs 1, eval.every within it", set: func(o *Options) { es(o); o.EvalEvery = 2 }, epochs: 1},
		{name: "max_steps with eval.every: config's to decide", set: func(o *Options) { es(o); o.EvalEvery = 5 }, steps: 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.set(&o)
			o.Steps, o.Epochs = c.steps, c.epochs
			s, log := fakeSession(o)
			if c.epochs > 0 {
				s.o.Steps = c.epochs * s.stepsPerEpoch()
			}
			err := s.checkValidationReach(c.epochs > 0)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("err %v, want one containing %q", err, c.refuse)
			}
			if c.note != "" && !strings.Contains(log.String(), c.note) || c.note == "" && log.Len() > 0 {
				t.Errorf("log %q, want note %q", log.String(), c.note)
			}
		})
	}
	// Without validation data nothing is reached either way; the
	// evaluation's notes say there is none.
	o := base
	o.Steps, o.EarlyStopPatience = 2, 1
	s, _ := fakeSession(o)
	s.data.val = nil
	if err := s.checkValidationReach(false); err != nil {
		t.Errorf("without validation data: %v", err)
	}
}
