package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/train"
)

// tinyBaseRun is a LoRA run on the tiny-base model with rows long enough
// (2×64 tokens: logits of 2·64·4096 floats) that the step's tensors are
// the pool's size, and a rank (64) at which every LoRA gradient is at
// least tensor.PoolMinLen floats, so a parameter gradient recycled while
// the optimizer still needs it would show. Rows of two lengths make the
// batch shapes vary, as padding trimmed per batch does.
func tinyBaseRun(t *testing.T, cfg train.Config, dropout float64) (*train.Trainer, *lora.Adapter) {
	t.Helper()
	lc := lora.NewConfig(64, 128, "all-linear")
	lc.LoraDropout = dropout
	m, a := loratest.Attached(t, tinyBase, nn.LoadOptions{KeepBF16: true}, lc, 3)
	var rows []prep.Row
	for i := 0; i < 8; i++ {
		r := prep.Row{Docs: 1}
		for j := 0; j < 48+16*(i%2); j++ {
			id := (i*131 + j*17 + 5) % m.Config.VocabSize
			r.InputIDs = append(r.InputIDs, int32(id))
			r.Labels = append(r.Labels, int32(id))
		}
		rows = append(rows, r)
	}
	loader, err := train.NewRowLoader(rows, []string{"s"}, 2, true, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewAdamW(optim.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxSteps, cfg.GradAccum, cfg.ClipNorm, cfg.LR = 4, 2, 1, 1e-2
	return &train.Trainer{Model: m, Params: a.Params(), Opt: opt, Train: loader, RNG: a, Cfg: cfg}, a
}

// TestCPUPoolMatchesHeap: training with the CPU pool (the default) gives
// bit-identical losses and weights to training with every step's memory
// left to Go's collector (HeapOnly), with released buffers poisoned with
// NaN (FTUNE_POOL_CHECK), so a tensor the tape releases before its last
// use, a parameter gradient recycled before the optimizer reads it, or a
// kernel reading a fresh tensor before writing it would show up as a
// difference; under gradient checkpointing, MLP chunks and LoRA dropout
// too (each adds releases of its own).
func TestCPUPoolMatchesHeap(t *testing.T) {
	prev := tensor.SetCPUPoolCheck(true)
	defer tensor.SetCPUPoolCheck(prev)
	for _, c := range []struct {
		name    string
		cfg     train.Config
		dropout float64
	}{
		{"plain", train.Config{}, 0},
		{"checkpointing, MLP chunks, dropout", train.Config{Checkpointing: true, MLPChunkTokens: 48}, 0.1},
	} {
		t.Run(c.name, func(t *testing.T) {
			heapCfg := c.cfg
			heapCfg.HeapOnly = true
			heap, aHeap := tinyBaseRun(t, heapCfg, c.dropout)
			if err := heap.Fit(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := tensor.CPUPoolCounts()
			pooled, aPool := tinyBaseRun(t, c.cfg, c.dropout)
			if err := pooled.Fit(context.Background()); err != nil {
				t.Fatal(err)
			}
			after := tensor.CPUPoolCounts()
			reused, fresh := after.Reused-before.Reused, after.Fresh-before.Fresh
			// 8 micro-batches: all but the first should find most of
			// their buffers released by the one before.
			if reused < 3*fresh {
				t.Fatalf("the pool reused %d buffers and allocated %d: recycling did not happen", reused, fresh)
			}
			if after.Cached != 0 {
				t.Fatalf("%d bytes still cached after Fit", after.Cached)
			}
			for i, l := range heap.State.Losses {
				if math.Float64bits(l) != math.Float64bits(pooled.State.Losses[i]) {
					t.Fatalf("step %d: loss %v on the heap, %v with the pool", i+1, l, pooled.State.Losses[i])
				}
			}
			wh, wp := aHeap.Weights(), aPool.Weights()
			for name, w := range wh {
				for i, v := range w.Data {
					if math.Float32bits(v) != math.Float32bits(wp[name].Data[i]) {
						t.Fatalf("%s[%d]: %v on the heap, %v with the pool", name, i, v, wp[name].Data[i])
					}
				}
			}
			t.Logf("%d losses and %d adapter tensors identical; the pool reused %d buffers, allocated %d", len(heap.State.Losses), len(wh), reused, fresh)
		})
	}
}
