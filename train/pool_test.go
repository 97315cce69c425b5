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
			r.Learnt = append(r.Learnt, true)
		}
		rows = append(rows, r)
	}
	loader, err := train.NewRowLoader(rows, []string{"s"}, 2, true, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Validation on the same rows, every second step: its forwards run on
	// inference tapes and take their buffers from the pool too.
	val, err := train.NewRowLoader(rows, []string{"s"}, 2, false, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewAdamW(optim.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxSteps, cfg.GradAccum, cfg.ClipNorm, cfg.LR, cfg.EvalEvery = 4, 2, 1, 1e-2, 2
	vals := &valRecorder{}
	return &train.Trainer{Model: m, Params: a.Params(), Opt: opt, Train: loader, Val: val, RNG: a, Cfg: cfg, Callbacks: []train.Callback{vals}}, a
}

// valRecorder keeps every validation's metrics.
type valRecorder struct {
	train.Base
	got []train.Metrics
}

func (v *valRecorder) OnValidationEnd(_ *train.Trainer, m train.Metrics) error {
	v.got = append(v.got, m)
	return nil
}

func valMetrics(t *testing.T, tr *train.Trainer) []train.Metrics {
	t.Helper()
	for _, c := range tr.Callbacks {
		if v, ok := c.(*valRecorder); ok {
			return v.got
		}
	}
	t.Fatal("no validation recorder")
	return nil
}

// TestCPUPoolMatchesHeap: training with the CPU pool (the default) gives
// bit-identical losses and weights to training with every step's memory
// left to Go's collector (HeapOnly), with released buffers poisoned with
// NaN (FTUNE_POOL_CHECK), so a tensor the tape releases before its last
// use, a parameter gradient recycled before the optimizer reads it, or a
// kernel reading a fresh tensor before writing it would show up as a
// difference; under gradient checkpointing, MLP chunks and LoRA dropout
// too (each adds releases of its own). Validation (inference tapes, which
// release what each block read) gives the same metrics bit for bit.
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
			vh, vp := valMetrics(t, heap), valMetrics(t, pooled)
			if len(vh) != 2 || len(vp) != len(vh) {
				t.Fatalf("%d validations on the heap, %d with the pool, want 2 each", len(vh), len(vp))
			}
			for i, m := range vh {
				for k, v := range m {
					if math.Float64bits(v) != math.Float64bits(vp[i][k]) {
						t.Fatalf("validation %d: %s %v on the heap, %v with the pool", i+1, k, v, vp[i][k])
					}
				}
			}
			t.Logf("%d losses, %d validations and %d adapter tensors identical; the pool reused %d buffers, allocated %d", len(heap.State.Losses), len(vh), len(wh), reused, fresh)
		})
	}
}

// Validation's forwards run on inference tapes, which give each block's
// tensors back once the block is done and the logits once read. Called
// on its own (a run's before and after, ftune eval), Validate holds the
// pool itself: its later batches take what the first gave back, and the
// pool is empty again when it returns. With the pool held across calls
// (as Fit holds it), a second validation over the same batches finds
// every buffer it needs and allocates none, with the same metrics bit for
// bit. On a nil tape each batch would allocate its activations afresh.
func TestValidationRecyclesItsBuffers(t *testing.T) {
	prev := tensor.SetCPUPoolCheck(true)
	defer tensor.SetCPUPoolCheck(prev)
	tr, _ := tinyBaseRun(t, train.Config{}, 0)
	start := tensor.CPUPoolCounts()
	alone, err := tr.Validate(context.Background(), tr.Val)
	if err != nil {
		t.Fatal(err)
	}
	if got := tensor.CPUPoolCounts(); got.Reused == start.Reused || got.Cached != 0 {
		t.Fatalf("a validation on its own reused %d buffers and left %d bytes cached, want > 0 and 0", got.Reused-start.Reused, got.Cached)
	}
	done := tensor.UseCPUPool()
	defer done()
	first, err := tr.Validate(context.Background(), tr.Val)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range alone {
		if math.Float64bits(v) != math.Float64bits(first[k]) {
			t.Fatalf("%s: %v, then %v", k, v, first[k])
		}
	}
	before := tensor.CPUPoolCounts()
	second, err := tr.Validate(context.Background(), tr.Val)
	if err != nil {
		t.Fatal(err)
	}
	after := tensor.CPUPoolCounts()
	if fresh := after.Fresh - before.Fresh; fresh != 0 {
		t.Errorf("the second validation allocated %d buffers afresh, want 0", fresh)
	}
	if reused := after.Reused - before.Reused; reused == 0 {
		t.Error("the second validation took nothing from the pool")
	}
	for k, v := range first {
		if math.Float64bits(v) != math.Float64bits(second[k]) {
			t.Fatalf("%s: %v, then %v from recycled buffers", k, v, second[k])
		}
	}
	t.Logf("second validation: %d buffers reused, %d fresh", after.Reused-before.Reused, after.Fresh-before.Fresh)
}
