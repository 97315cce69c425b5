package train_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/train"
)

// arenaProbe records the arena's counters at the end of training.
type arenaProbe struct {
	train.Base
	reused, fresh int64
	had           bool
}

func (p *arenaProbe) OnTrainEnd(t *train.Trainer) error {
	if a := t.Arena(); a != nil {
		p.had = true
		p.reused, p.fresh = a.Stats()
	}
	return nil
}

// tinyBaseRun is a LoRA run on the tiny-base model with rows long enough
// (2×64 tokens: logits of 2·64·4096 floats) that the step's tensors go
// through the arena, and a rank (64) at which every LoRA gradient is at
// least tensor.ArenaMinLen floats, so it would be in the arena too if
// autograd did not keep it out.
func tinyBaseRun(t *testing.T, stepArena bool) (*train.Trainer, *lora.Adapter, *arenaProbe) {
	t.Helper()
	m, a := loratest.Attached(t, tinyBase, nn.LoadOptions{KeepBF16: true}, lora.NewConfig(64, 128, "all-linear"), 3)
	var rows []prep.Row
	for i := 0; i < 8; i++ {
		r := prep.Row{Docs: 1}
		for j := 0; j < 64; j++ {
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
	probe := &arenaProbe{}
	return &train.Trainer{
		Model: m, Params: a.Params(), Opt: opt, Train: loader, RNG: a, Callbacks: []train.Callback{probe},
		Cfg: train.Config{MaxSteps: 4, GradAccum: 2, ClipNorm: 1, LR: 1e-2, StepArena: stepArena},
	}, a, probe
}

// TestArenaMatchesHeap: training with the step arena gives bit-identical
// losses and weights to training on Go's heap, with recycled buffers
// poisoned with NaN at every Reset (FTUNE_ARENA_CHECK), so a tensor used
// after its micro-batch, a parameter gradient left in the arena, or a
// kernel reading a fresh tensor before writing it would show up as a
// difference (NaN).
func TestArenaMatchesHeap(t *testing.T) {
	t.Setenv("FTUNE_ARENA_CHECK", "1")
	heap, aHeap, pHeap := tinyBaseRun(t, false)
	if err := heap.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	arena, aArena, pArena := tinyBaseRun(t, true)
	if err := arena.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pHeap.had || !pArena.had {
		t.Fatalf("arena in use: default run %v, StepArena run %v; want false, true", pHeap.had, pArena.had)
	}
	// 4 steps × 2 micro-batches: every micro-batch after the first one
	// should find its buffers in the arena.
	if pArena.reused < 7*pArena.fresh/2 {
		t.Fatalf("arena reused %d buffers and allocated %d: recycling did not happen", pArena.reused, pArena.fresh)
	}
	for i, l := range heap.State.Losses {
		if math.Float64bits(l) != math.Float64bits(arena.State.Losses[i]) {
			t.Fatalf("step %d: loss %v on the heap, %v with the arena", i+1, l, arena.State.Losses[i])
		}
	}
	wh, wa := aHeap.Weights(), aArena.Weights()
	for name, w := range wh {
		for i, v := range w.Data {
			if math.Float32bits(v) != math.Float32bits(wa[name].Data[i]) {
				t.Fatalf("%s[%d]: %v on the heap, %v with the arena", name, i, v, wa[name].Data[i])
			}
		}
	}
	t.Logf("%d losses and %d adapter tensors identical; arena reused %d buffers, allocated %d", len(heap.State.Losses), len(wh), pArena.reused, pArena.fresh)
}

// TestStepArenaIsRefusedWhereItCannotWork: StepArena is refused with
// Checkpointing, and while another training loop holds the CPU backend's
// arena (two loops in one process would each Reset the other's live
// tensors: the data-parallel tests run their workers as goroutines on
// one backend); once the holder lets go, the same run trains.
func TestStepArenaIsRefusedWhereItCannotWork(t *testing.T) {
	tr, _ := newRun(t, 1)
	tr.Cfg.StepArena, tr.Cfg.Checkpointing = true, true
	if err := tr.Fit(context.Background()); err == nil || !strings.Contains(err.Error(), "Checkpointing") {
		t.Fatalf("StepArena with Checkpointing: %v, want a refusal naming Checkpointing", err)
	}
	tr, _ = newRun(t, 1)
	tr.Cfg.StepArena = true
	cpu := tr.Model.Backend.(*tensor.CPUBackend)
	other := tensor.NewArena()
	if err := cpu.ClaimArena(other); err != nil {
		t.Fatal(err)
	}
	err := tr.Fit(context.Background())
	cpu.ReleaseArena(other)
	if err == nil || !strings.Contains(err.Error(), "another training loop") {
		t.Fatalf("StepArena on a held backend: %v, want a refusal", err)
	}
	if len(tr.State.Losses) != 0 {
		t.Fatalf("the refused run trained %d steps", len(tr.State.Losses))
	}
	tr, _ = newRun(t, 1)
	tr.Cfg.StepArena = true
	if err := tr.Fit(context.Background()); err != nil {
		t.Fatalf("after the holder's release: %v", err)
	}
	if tr.Arena() != nil {
		t.Fatal("the arena outlived Fit")
	}
}
