package lora

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// offloadStep is one checkpointed training step on a counting backend (a
// stand-in for a GPU: it releases storage early and offers host memory),
// with the trainer's tape: what it computes, and the bytes it holds.
type offloadStep struct {
	stepResult
	atBackward, hostAtBackward, hostAfter int64
	backwardPeak                          int64 // above the bytes live before the step
}

// memorySettings are the model's memory savers a step runs with.
type memorySettings struct {
	checkpoint, offload bool
	mlpChunk            int
}

// countedDropoutAdapter loads the fixture on a counting backend with a
// random adapter (q_proj, v_proj, down_proj) attached, dropout 0.3, and
// its dropout streams' starting state.
func countedDropoutAdapter(t *testing.T, seed uint64) (*backendtest.Counting, *nn.Model, *Adapter, map[string][]byte) {
	t.Helper()
	c := backendtest.NewCounting()
	m := loadFixture(t, nn.LoadOptions{Backend: c})
	a := randomAdapter(t, m, "default", seed)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	setDropout([]*Adapter{a}, 0.3)
	start, err := a.SaveRNG()
	if err != nil {
		t.Fatal(err)
	}
	return c, m, a, start
}

func runOffloadStep(t *testing.T, c *backendtest.Counting, m *nn.Model, a *Adapter, start map[string][]byte, offload, keepHidden bool) offloadStep {
	t.Helper()
	return runMemoryStep(t, c, m, a, start, memorySettings{checkpoint: true, offload: offload}, keepHidden)
}

func runMemoryStep(t *testing.T, c *backendtest.Counting, m *nn.Model, a *Adapter, start map[string][]byte, ms memorySettings, keepHidden bool) offloadStep {
	t.Helper()
	m.Checkpointing, m.OffloadCheckpoints, m.MLPChunkTokens = ms.checkpoint, ms.offload, ms.mlpChunk
	defer func() { m.Checkpointing, m.OffloadCheckpoints, m.MLPChunkTokens = false, false, 0 }()
	if err := a.LoadRNG(start); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Params() {
		p.ZeroGrad()
	}
	tp := autograd.NewTape()
	tp.ReleaseActivations = true
	before := c.Live()
	out, err := m.Forward(tp, dropoutBatch(m), nn.ForwardOptions{KeepHidden: keepHidden})
	if err != nil {
		t.Fatal(err)
	}
	tp.Keep(out.Hidden...)
	r := offloadStep{atBackward: c.Live() - before, hostAtBackward: c.Host()}
	c.ResetPeak()
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	r.backwardPeak = c.Peak() - before
	r.hostAfter = c.Host()
	r.stepResult = stepResult{loss: out.Loss.Value.Item(), grads: map[string][]float32{}, rng: map[string][]byte{}}
	for k, p := range a.Params() {
		r.grads[k] = p.Grad.F32()
	}
	st, err := a.SaveRNG()
	if err != nil {
		t.Fatal(err)
	}
	r.rng = st
	return r
}

// TestOffloadedCheckpointsMatchCheckpointedStep: gradient checkpointing
// with the saved block inputs offloaded to host memory computes what it
// computes without, bit for bit — loss, every adapter gradient, the
// dropout streams (dropout 0.3: the recompute must draw the same masks) —
// and holds exactly the offloaded inputs fewer on the device when the
// backward begins: every block's input, the first too (the frozen
// embeddings' lookup, an unrecorded op's output the first region adopted),
// B·T·H float32 each, all of them in host memory then and none after the
// backward (each copied back as its block is recomputed). Exact, because the copies move bits and the counting
// backend poisons (NaN) every storage released, so a read of an offloaded
// input's old storage would change the gradients. With KeepHidden (the
// caller reads the hidden states) nothing is offloaded.
func TestOffloadedCheckpointsMatchCheckpointedStep(t *testing.T) {
	c, m, a, start := countedDropoutAdapter(t, 3)
	ckpt := runOffloadStep(t, c, m, a, start, false, false)
	off := runOffloadStep(t, c, m, a, start, true, false)
	kept := runOffloadStep(t, c, m, a, start, true, true)

	if math.Float64bits(off.loss) != math.Float64bits(ckpt.loss) {
		t.Errorf("loss %v offloaded, %v not", off.loss, ckpt.loss)
	}
	for _, k := range slices.Sorted(maps.Keys(ckpt.grads)) {
		if i := firstDiff(off.grads[k], ckpt.grads[k]); i >= 0 {
			t.Errorf("%s: gradient differs at %d when offloaded: %v, want %v", k, i, off.grads[k][i], ckpt.grads[k][i])
		}
	}
	for k, b := range ckpt.rng {
		if string(off.rng[k]) != string(b) {
			t.Errorf("%s: dropout stream ends elsewhere when offloaded", k)
		}
	}
	const B, T = 2, 9 // dropoutBatch
	cfg := m.Config
	input := int64(cfg.NumLayers * B * T * cfg.HiddenSize * 4)
	if d := ckpt.atBackward - off.atBackward; d != input || off.hostAtBackward != input || off.hostAfter != 0 {
		t.Errorf("offloaded: %d bytes fewer on the device at the backward, %d in host memory then, %d after; want %d, %d, 0",
			d, off.hostAtBackward, off.hostAfter, input, input)
	}
	if ckpt.hostAtBackward != 0 || kept.hostAtBackward != 0 || kept.atBackward != ckpt.atBackward {
		t.Errorf("host bytes without offload %d, with KeepHidden %d (device %d, want %d)", ckpt.hostAtBackward, kept.hostAtBackward, kept.atBackward, ckpt.atBackward)
	}
}

// TestTiledMLPMatchesTheWholeMLP: the MLP run over chunks of tokens, each
// recomputed by its own backward (nn.Model.MLPChunkTokens), trains as the
// whole MLP does, with and without gradient checkpointing (whose recompute
// then runs the chunks as regions inside the block's region) and with
// LoRA dropout 0.3 (each chunk's recompute must draw its first forward's
// masks). The loss and the adapter gradients agree within float32
// reassociation (rtol 1e-5: a chunk's GEMMs may take another kernel path
// for fewer rows, and the weights' gradients are summed chunk by chunk),
// the dropout streams end in the same state bit for bit, and the step's
// peak during the backward is lower: the MLP's intermediate_size-wide
// tensors exist for one chunk at a time.
func TestTiledMLPMatchesTheWholeMLP(t *testing.T) {
	c, m, a, start := countedDropoutAdapter(t, 5) // q_proj, v_proj and the MLP's down_proj
	const chunk = 5                               // dropoutBatch's 18 tokens: chunks of 5, 5, 5 and 3
	for _, ckpt := range []bool{false, true} {
		whole := runMemoryStep(t, c, m, a, start, memorySettings{checkpoint: ckpt}, false)
		tiled := runMemoryStep(t, c, m, a, start, memorySettings{checkpoint: ckpt, mlpChunk: chunk}, false)
		if d := math.Abs(tiled.loss-whole.loss) / math.Abs(whole.loss); d > 1e-6 {
			t.Errorf("checkpointing %v: loss %v tiled, %v whole", ckpt, tiled.loss, whole.loss)
		}
		for _, k := range slices.Sorted(maps.Keys(whole.grads)) {
			if e := testutil.RelFrobenius(testutil.F64(tiled.grads[k]), testutil.F64(whole.grads[k])); e > 1e-5 || e != e {
				t.Errorf("checkpointing %v: %s: relative error %.3g tiled", ckpt, k, e)
			}
		}
		for k, b := range whole.rng {
			if string(tiled.rng[k]) != string(b) {
				t.Errorf("checkpointing %v: %s: dropout stream ends elsewhere tiled", ckpt, k)
			}
		}
		t.Logf("checkpointing %v: backward peak %d B whole, %d B tiled; live at the backward %d B, %d B", ckpt, whole.backwardPeak, tiled.backwardPeak, whole.atBackward, tiled.atBackward)
		if tiled.backwardPeak >= whole.backwardPeak {
			t.Errorf("checkpointing %v: backward peak %d B tiled, not below the whole MLP's %d B", ckpt, tiled.backwardPeak, whole.backwardPeak)
		}
	}
}

// Per-subject adapters route whole batch rows, which the MLP over chunks of
// tokens does not keep: the router refuses the chunk with an error naming
// the setting, never routing tokens through another row's adapter.
func TestTiledMLPRefusedWithRowRouting(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	s := NewSubjectAdapterModel(m)
	for i, name := range []string{"chemistry", "geography"} {
		if err := s.Add(randomAdapter(t, m, name, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	m.MLPChunkTokens = 5
	defer func() { m.MLPChunkTokens = 0 }()
	err := tensor.Catch(func() {
		if _, err := s.ForwardRouted(autograd.NewTape(), dropoutBatch(m), []string{"geography", "chemistry"}, nn.ForwardOptions{}); err != nil {
			panic(&tensor.Error{Err: err})
		}
	})
	if err == nil || !strings.Contains(err.Error(), "training.mlp_chunk_tokens is not supported") {
		t.Fatalf("routed rows with the MLP over chunks: %v", err)
	}
}
