package train_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/prep"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/train"
)

const fixture = "../testdata/fixtures/llama-tiny"

// newRun builds a LoRA training run (dropout on, so the random streams
// matter) over synthetic rows.
func newRun(t *testing.T, maxSteps int) (*train.Trainer, *lora.Adapter) {
	t.Helper()
	c := lora.NewConfig(4, 8, "all-linear")
	c.LoraDropout = 0.1
	m, a := loratest.Attached(t, fixture, nn.LoadOptions{}, c, 7)
	var rows []prep.Row
	for i := 0; i < 12; i++ {
		n := 6 + i%5
		r := prep.Row{Docs: 1}
		for j := 0; j < n; j++ {
			id := (i*31 + j*7 + 3) % m.Config.VocabSize
			r.InputIDs = append(r.InputIDs, int32(id))
			r.Learnt = append(r.Learnt, j >= 2)
		}
		rows = append(rows, r)
	}
	loader, err := train.NewRowLoader(rows, []string{"s"}, 3, true, 11, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewAdamW(optim.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	return &train.Trainer{
		Model: m, Params: a.Params(), Opt: opt, Train: loader, RNG: a,
		Cfg: train.Config{MaxSteps: maxSteps, GradAccum: 2, ClipNorm: 1, LR: 5e-3, Schedule: optim.CosineWithWarmup(3, 20, 0.5)},
	}, a
}

// TestResumeIsExact: 20 steps straight equal 10 steps, a checkpoint, a new
// process's worth of objects restored from it, and 10 more — every loss and
// every weight bit for bit.
func TestResumeIsExact(t *testing.T) {
	straight, aStraight := newRun(t, 20)
	if err := straight.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}

	first, _ := newRun(t, 10)
	if err := first.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := train.SaveCheckpoint(dir, first, nil); err != nil {
		t.Fatal(err)
	}
	second, aSecond := newRun(t, 20)
	if _, err := train.ResumeLatest(dir, second, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	if err := second.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(second.State.Losses) != 20 || len(straight.State.Losses) != 20 {
		t.Fatalf("losses: %d resumed, %d straight", len(second.State.Losses), len(straight.State.Losses))
	}
	for i := range straight.State.Losses {
		if math.Float64bits(straight.State.Losses[i]) != math.Float64bits(second.State.Losses[i]) {
			t.Fatalf("step %d: loss %v straight, %v resumed", i+1, straight.State.Losses[i], second.State.Losses[i])
		}
	}
	ws, wr := aStraight.Weights(), aSecond.Weights()
	for name, w := range ws {
		for i, v := range w.Data {
			if math.Float32bits(v) != math.Float32bits(wr[name].Data[i]) {
				t.Fatalf("%s[%d]: %v straight, %v resumed", name, i, v, wr[name].Data[i])
			}
		}
	}
	if straight.State.Losses[19] >= straight.State.Losses[0] {
		t.Errorf("loss did not decrease: %v -> %v", straight.State.Losses[0], straight.State.Losses[19])
	}
	t.Logf("20 losses and %d adapter tensors identical; loss %.4f -> %.4f", len(ws), straight.State.Losses[0], straight.State.Losses[19])
}

// TestCorruptLatestFallsBack: a damaged newest checkpoint is skipped with a
// warning and the previous one is used.
func TestCorruptLatestFallsBack(t *testing.T) {
	run, _ := newRun(t, 4)
	dir := t.TempDir()
	ck := &train.Checkpointer{Dir: dir, Every: 2, KeepLast: 5}
	run.Callbacks = []train.Callback{ck}
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := train.Checkpoints(dir)
	if len(all) != 2 {
		t.Fatalf("checkpoints %v, want steps 2 and 4", all)
	}
	if err := corrupt(all[1] + "/params.safetensors"); err != nil {
		t.Fatal(err)
	}
	again, _ := newRun(t, 4)
	var warned string
	got, err := train.ResumeLatest(dir, again, func(s string) { warned = s })
	if err != nil {
		t.Fatal(err)
	}
	if got != all[0] || warned == "" || again.State.Step != 2 {
		t.Fatalf("resumed from %s at step %d (warning %q), want %s at step 2", got, again.State.Step, warned, all[0])
	}
}

// TestUnlabelledDataIsAnErrorNotAHang: training data whose every batch
// has no labelled token (prompts only, answers masked or cut away) ends
// Fit with an error at the end of the first epoch; before, max_steps made
// the epochs endless and Fit never returned.
func TestUnlabelledDataIsAnErrorNotAHang(t *testing.T) {
	tr, _ := newRun(t, 5)
	rows := make([]prep.Row, 4)
	for i := range rows {
		rows[i] = prep.Row{Docs: 1, InputIDs: []int32{3, 4, 5}, Learnt: make([]bool, 3)}
	}
	loader, err := train.NewRowLoader(rows, []string{"s"}, 2, false, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.Train = loader
	done := make(chan error, 1)
	go func() { done <- tr.Fit(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no batch with a labelled token") {
			t.Fatalf("Fit: %v, want the epoch without a labelled token named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fit did not return in 30 s on data without a labelled token")
	}
}
