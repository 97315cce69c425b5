package train_test

import (
	"context"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor/backendtest"
	"github.com/ftune/ftune/train"
)

// liveAtStepEnd records the counting backend's live bytes after each step.
type liveAtStepEnd struct {
	train.Base
	be   *backendtest.Counting
	live []int64
}

func (c *liveAtStepEnd) OnStepEnd(*train.Trainer, train.Metrics) error {
	c.live = append(c.live, c.be.Live())
	return nil
}

// TestStepsLeaveNothingToTheCollector: on a device (the counting backend
// stands in for one: it counts what was allocated and not released), a
// step gives back everything it made that does not outlive it: the
// gradients once the optimizer has read them, the micro-batches' partial
// sums as they are added, the batch once its micro-batch has run
// (Batch.Fresh), the pass's constants (RoPE tables, shifted labels) after
// the backward and the scaled loss. Live bytes after every step are then
// the same. On a GPU what a step leaves to Go's collector makes the next
// step's request of its size miss the caching allocator's cache (226
// device allocations a step at Llama-3-8B, r 32, before; the bf16 product
// widened for a float32 master is autograd's TestWidenedGradientIsGivenBack).
// With the gradients left it grew by 38,792 bytes a step; with the batch,
// the constants and the scaled loss left, by 2952.
func TestStepsLeaveNothingToTheCollector(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		be := backendtest.NewCounting()
		m, a := loratest.Attached(t, fixture, nn.LoadOptions{Backend: be}, lora.NewConfig(4, 8, "all-linear"), 7)
		var rows []prep.Row
		for i := range 8 {
			r := prep.Row{Docs: 1}
			for j := range 8 {
				id := int32((i*31 + j*7 + 3) % m.Config.VocabSize)
				r.InputIDs, r.Learnt = append(r.InputIDs, id), append(r.Learnt, true)
			}
			rows = append(rows, r)
		}
		loader, err := train.NewRowLoader(rows, []string{"s"}, 2, false, 1, 0, be)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := optim.NewAdamW(optim.DefaultAdamW())
		if err != nil {
			t.Fatal(err)
		}
		rec := &liveAtStepEnd{be: be}
		tr := &train.Trainer{Model: m, Params: a.Params(), Opt: opt, Train: loader, RNG: a, Callbacks: []train.Callback{rec},
			Cfg: train.Config{MaxSteps: 4, GradAccum: 2, ClipNorm: 1, LR: 1e-3, Checkpointing: ckpt}}
		if err := tr.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		// After the first step (which makes the optimizer's state).
		for i := 2; i < len(rec.live); i++ {
			if grew := rec.live[i] - rec.live[i-1]; grew != 0 {
				t.Errorf("checkpointing %v: step %d left %d bytes live (live after each step: %v)", ckpt, i+1, grew, rec.live)
			}
		}
		t.Logf("checkpointing %v: live bytes after each step %v", ckpt, rec.live)
	}
}
