package train_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/train"
)

// withVal gives a run of newRun validation data (dropout stays on).
func withVal(t *testing.T, tr *train.Trainer) *train.Trainer {
	t.Helper()
	var rows []prep.Row
	for i := 0; i < 5; i++ {
		r := prep.Row{Docs: 1}
		for j := 0; j < 5+i%3; j++ {
			id := int32((i*17 + j*5 + 1) % tr.Model.Config.VocabSize)
			r.InputIDs, r.Learnt = append(r.InputIDs, id), append(r.Learnt, true)
		}
		rows = append(rows, r)
	}
	val, err := train.NewRowLoader(rows, []string{"s"}, 2, false, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.Val = val
	return tr
}

// scripted makes a run's validation report val/loss = f(step) without
// computing anything.
func scripted(tr *train.Trainer, f func(step int) float64) {
	tr.Validation = func(ctx context.Context, _ train.Loader) (train.Metrics, error) {
		return train.Metrics{"val/loss": f(tr.State.Step)}, nil
	}
}

func steps(dirs []string) []int {
	var out []int
	for _, d := range dirs {
		var n int
		fmt.Sscanf(filepath.Base(d), "step-%d", &n)
		out = append(out, n)
	}
	return out
}

// counting counts the checkpoints a Checkpointer writes (its Extra).
func counting(c *train.Checkpointer, n *int) *train.Checkpointer {
	c.Extra = func(string) error { *n++; return nil }
	return c
}

// TestResumeAtFinalCheckpointDoesNotSaveAgain: a run resumed at its last
// checkpoint with no step left wrote that checkpoint again at its end
// (the Checkpointer forgot its last save), removing the folder before
// renaming the new one in: a process killed between left no checkpoint.
func TestResumeAtFinalCheckpointDoesNotSaveAgain(t *testing.T) {
	dir := t.TempDir()
	run, _ := newRun(t, 4)
	run.Callbacks = []train.Callback{&train.Checkpointer{Dir: dir, Every: 2, KeepLast: 1}}
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	saves := 0
	again, _ := newRun(t, 4)
	again.Callbacks = []train.Callback{counting(&train.Checkpointer{Dir: dir, Every: 2, KeepLast: 1}, &saves)}
	if _, err := train.ResumeLatest(dir, again, nil); err != nil {
		t.Fatal(err)
	}
	if err := again.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if saves != 0 {
		t.Errorf("a resume at the last step wrote %d checkpoint(s), want none", saves)
	}
	if got := steps(train.Checkpoints(dir)); !slices.Equal(got, []int{4}) {
		t.Errorf("checkpoints %v, want [4]", got)
	}
}

// TestResaveReplacesWhole: a checkpoint written again at the same step
// replaces the folder, with no temporary folder left.
func TestResaveReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	run, _ := newRun(t, 2)
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := train.SaveCheckpoint(dir, run, nil); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != train.StepDir(2) {
		t.Fatalf("folder holds %v, want step-00000002 alone", entries)
	}
	again, _ := newRun(t, 2)
	if err := train.LoadCheckpoint(filepath.Join(dir, train.StepDir(2)), again); err != nil {
		t.Fatal(err)
	}
}

// TestResumeKeepsBestCheckpoint: the top_k ranking lived in memory only,
// so a resumed run's keep_last pruning deleted the best checkpoint.
func TestResumeKeepsBestCheckpoint(t *testing.T) {
	valLoss := func(step int) float64 { return math.Abs(float64(step)-3) + 1 } // best at step 3
	ck := func(dir string) *train.Checkpointer {
		return &train.Checkpointer{Dir: dir, Every: 1, KeepLast: 1, Monitor: "val/loss", TopK: 1}
	}
	fit := func(dir string, maxSteps int, resume bool) {
		run := withVal(t, first(newRun(t, maxSteps)))
		run.Cfg.EvalEvery = 1
		scripted(run, valLoss)
		run.Callbacks = []train.Callback{ck(dir)}
		if resume {
			if _, err := train.ResumeLatest(dir, run, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := run.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	straight := t.TempDir()
	fit(straight, 7, false)
	resumed := t.TempDir()
	fit(resumed, 5, false)
	fit(resumed, 7, true)
	want := steps(train.Checkpoints(straight))
	if got := steps(train.Checkpoints(resumed)); !slices.Equal(got, want) || !slices.Equal(want, []int{3, 7}) {
		t.Errorf("checkpoints: %v resumed, %v straight; want [3 7] both", got, want)
	}
}

// TestResumeKeepsEarlyStopping: early stopping's count started again on
// resume: a run that stops at step 6 straight ran past it resumed.
func TestResumeKeepsEarlyStopping(t *testing.T) {
	valLoss := func(step int) float64 { return math.Abs(float64(step)-3) + 1 } // no better after step 3
	fit := func(dir string, maxSteps int, resume bool) *train.Trainer {
		run := withVal(t, first(newRun(t, maxSteps)))
		run.Cfg.EvalEvery = 1
		scripted(run, valLoss)
		run.Callbacks = []train.Callback{&train.Checkpointer{Dir: dir, Every: 1, KeepLast: 2}, &train.EarlyStopping{Monitor: "val/loss", Patience: 3}}
		if resume {
			if _, err := train.ResumeLatest(dir, run, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := run.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		return run
	}
	straight := fit(t.TempDir(), 20, false)
	dir := t.TempDir()
	fit(dir, 5, false)
	resumed := fit(dir, 20, true)
	if straight.State.Step != 6 || resumed.State.Step != 6 {
		t.Errorf("stopped at step %d straight, %d resumed; want 6 both (%q, %q)", straight.State.Step, resumed.State.Step, straight.State.StopReason, resumed.State.StopReason)
	}
	if resumed.State.BestMetric != 1 {
		t.Errorf("State.BestMetric %v, want 1", resumed.State.BestMetric)
	}
}

// events records the order of validations and checkpoints.
type events struct {
	train.Base
	log *[]string
}

func (e events) OnValidationEnd(t *train.Trainer, _ train.Metrics) error {
	*e.log = append(*e.log, fmt.Sprintf("val@%d", t.State.Step))
	return nil
}

// TestCheckpointFollowsValidation: a step's checkpoint was written before
// its validation, so a run stopped during that validation resumed past
// it (no val record, no ranking, no early stopping at that step), and
// every checkpoint held the previous validation's state. The checkpoint
// now follows the validation; one written by an interrupt during the
// validation says so, and the resumed run validates at that step first.
func TestCheckpointFollowsValidation(t *testing.T) {
	dir := t.TempDir()
	var log []string
	run := withVal(t, first(newRun(t, 4)))
	run.Cfg.EvalEvery = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run.Validation = func(ctx context.Context, _ train.Loader) (train.Metrics, error) {
		if run.State.Step == 4 { // Ctrl-C during the second validation
			cancel()
			return nil, ctx.Err()
		}
		return train.Metrics{"val/loss": 1}, nil
	}
	c := &train.Checkpointer{Dir: dir, Every: 2}
	c.Extra = func(string) error { log = append(log, fmt.Sprintf("save@%d", run.State.Step)); return nil }
	run.Callbacks = []train.Callback{events{log: &log}, c}
	if err := run.Fit(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"val@2", "save@2", "save@4"}; !slices.Equal(log, want) {
		t.Errorf("events %v, want %v", log, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, train.StepDir(4), "trainer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ State train.State }
	if err := json.Unmarshal(raw, &st); err != nil || !st.State.ValidationPending {
		t.Fatalf("step 4's checkpoint (interrupted validation): validation_pending %v (%v), want true", st.State.ValidationPending, err)
	}

	log = nil
	again := withVal(t, first(newRun(t, 4)))
	again.Cfg.EvalEvery = 2
	scripted(again, func(int) float64 { return 1 })
	c = &train.Checkpointer{Dir: dir, Every: 2}
	c.Extra = func(string) error { log = append(log, fmt.Sprintf("save@%d", again.State.Step)); return nil }
	again.Callbacks = []train.Callback{events{log: &log}, c}
	if _, err := train.ResumeLatest(dir, again, nil); err != nil {
		t.Fatal(err)
	}
	if err := again.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"val@4", "save@4"}; !slices.Equal(log, want) {
		t.Errorf("resumed: events %v, want %v (the interrupted validation redone, then its checkpoint)", log, want)
	}
}

// TestResumeWithValidationIsExact: validations (every 2 steps, dropout
// on) between checkpoints leave a resumed run bit for bit the straight
// one, losses and validation losses alike.
func TestResumeWithValidationIsExact(t *testing.T) {
	fit := func(dir string, maxSteps int, resume bool) (*train.Trainer, []float64) {
		run := withVal(t, first(newRun(t, maxSteps)))
		run.Cfg.EvalEvery = 2
		var vals []float64
		rec := &recordVal{vals: &vals}
		run.Callbacks = []train.Callback{rec, &train.Checkpointer{Dir: dir, Every: 3}}
		if resume {
			if _, err := train.ResumeLatest(dir, run, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := run.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		return run, vals
	}
	straight, sv := fit(t.TempDir(), 10, false)
	dir := t.TempDir()
	_, v1 := fit(dir, 6, false)
	resumed, v2 := fit(dir, 10, true)
	rv := append(v1, v2...)
	if !slices.Equal(bitsOf(sv), bitsOf(rv)) {
		t.Errorf("val losses %v straight, %v resumed", sv, rv)
	}
	if !slices.Equal(bitsOf(straight.State.Losses), bitsOf(resumed.State.Losses)) {
		t.Errorf("losses %v straight, %v resumed", straight.State.Losses, resumed.State.Losses)
	}
}

type recordVal struct {
	train.Base
	vals *[]float64
}

func (r *recordVal) OnValidationEnd(_ *train.Trainer, m train.Metrics) error {
	*r.vals = append(*r.vals, m["val/loss"])
	return nil
}

func bitsOf(x []float64) []uint64 {
	out := make([]uint64, len(x))
	for i, v := range x {
		out[i] = math.Float64bits(v)
	}
	return out
}

func first[T, U any](t T, _ U) T { return t }

// TestNoCheckpointAtStepZero: a run interrupted before its first step
// writes no checkpoint (there is no step to save).
func TestNoCheckpointAtStepZero(t *testing.T) {
	dir := t.TempDir()
	run, _ := newRun(t, 2)
	run.Callbacks = []train.Callback{&train.Checkpointer{Dir: dir, Every: 1}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run.Fit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := train.Checkpoints(dir); len(got) != 0 {
		t.Errorf("an interrupt before the first step wrote %v", got)
	}
}
