package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestGradientCheckpointingResumesExactly: with LoRA dropout on, 12 steps
// without gradient checkpointing equal 6 steps with it, a checkpoint, and
// 6 more with it in a fresh trainer — every loss and adapter weight bit
// for bit. The checkpointed blocks draw the same dropout masks and leave
// the streams (saved in the checkpoint) where a plain run leaves them.
func TestGradientCheckpointingResumesExactly(t *testing.T) {
	plain, aPlain := newRun(t, 12)
	if err := plain.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, _ := newRun(t, 6)
	first.Cfg.Checkpointing = true
	if err := first.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := train.SaveCheckpoint(dir, first, nil); err != nil {
		t.Fatal(err)
	}
	second, aSecond := newRun(t, 12)
	second.Cfg.Checkpointing = true
	if _, err := train.ResumeLatest(dir, second, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	if err := second.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(second.State.Losses) != 12 || len(plain.State.Losses) != 12 {
		t.Fatalf("losses: %d checkpointed and resumed, %d plain", len(second.State.Losses), len(plain.State.Losses))
	}
	for i := range plain.State.Losses {
		if math.Float64bits(plain.State.Losses[i]) != math.Float64bits(second.State.Losses[i]) {
			t.Fatalf("step %d: loss %v plain, %v checkpointed", i+1, plain.State.Losses[i], second.State.Losses[i])
		}
	}
	wp, wc := aPlain.Weights(), aSecond.Weights()
	for name, w := range wp {
		for i, v := range w.Data {
			if math.Float32bits(v) != math.Float32bits(wc[name].Data[i]) {
				t.Fatalf("%s[%d]: %v plain, %v checkpointed", name, i, v, wc[name].Data[i])
			}
		}
	}
}
