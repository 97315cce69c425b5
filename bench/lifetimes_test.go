package bench

import (
	"slices"
	"sort"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// A real LoRA training step (tiny-base: embeddings, RMSNorm, RoPE,
// attention, SwiGLU, LoRA on all seven projections, the chunked linear
// cross-entropy) on a backend that counts live bytes and poisons what it
// releases: with Tape.ReleaseActivations the step's peak drops, and the
// loss and every adapter gradient stay the same bit for bit (nothing was
// released before its last use), with and without gradient checkpointing.
// With checkpointing, what each block's first forward made is released
// when it returns (it recorded nothing), so the backward begins with the
// blocks' inputs and little else.
func TestReleaseActivationsOnALoRAStep(t *testing.T) {
	var uncheckpointed int64 // live at the backward without checkpointing
	for _, ckpt := range []bool{false, true} {
		type result struct {
			loss       float64
			grads      [][]float32
			peak       int64
			atBackward int64 // live when the backward begins: every activation the forward keeps
			bwdPeak    int64 // the most live during the backward
		}
		step := func(release bool) result {
			be := backendtest.NewCounting()
			m, a, in := tinyLoRAStep(t, be, 0, 2, 48)
			m.Checkpointing = ckpt
			be.ResetPeak()
			start := be.Live()
			tp := autograd.NewTape()
			tp.ReleaseActivations = release
			out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			atBackward := be.Live() - start
			fwdPeak := be.Peak()
			be.ResetPeak()
			if err := tp.Backward(out.Loss); err != nil {
				t.Fatal(err)
			}
			if release && tp.Released().Storages == 0 {
				t.Fatal("nothing released")
			}
			params := a.Params()
			names := make([]string, 0, len(params))
			for n := range params {
				names = append(names, n)
			}
			sort.Strings(names)
			r := result{loss: out.Loss.Value.Item(), peak: max(fwdPeak, be.Peak()) - start, atBackward: atBackward, bwdPeak: be.Peak() - start}
			for _, n := range names {
				if params[n].Grad == nil {
					t.Fatalf("%s got no gradient", n)
				}
				r.grads = append(r.grads, params[n].Grad.F32())
			}
			return r
		}
		off, on := step(false), step(true)
		if on.loss != off.loss {
			t.Errorf("ckpt=%v: loss %v with release, %v without", ckpt, on.loss, off.loss)
		}
		for i := range off.grads {
			if !slices.Equal(on.grads[i], off.grads[i]) {
				t.Errorf("ckpt=%v: adapter gradient %d differs with release (a released buffer was read)", ckpt, i)
				break
			}
		}
		if !ckpt && float64(on.bwdPeak) > 1.25*float64(on.atBackward) {
			// The backward releases each gradient as it drops it (and each
			// forgotten activation's copy after its last use): it adds
			// little to what the forward left (1.09x at 4 x 256; 1.69x when
			// gradients waited for the collector).
			t.Errorf("backward's peak %d B with release, %d B live when it began: want at most 1.25x", on.bwdPeak, on.atBackward)
		}
		if !ckpt {
			uncheckpointed = on.atBackward
		} else if on.atBackward > uncheckpointed/3 {
			// 10.7 against 68.7 MiB at 4 x 256 (117.2 when the regions'
			// activations waited for the collector).
			t.Errorf("live at the backward %d B checkpointed, %d B not: want at most a third", on.atBackward, uncheckpointed)
		}
		if on.peak >= off.peak*9/10 {
			t.Errorf("ckpt=%v: step peak %d B with release, %d B without: want at least 10%% lower", ckpt, on.peak, off.peak)
		}
		t.Logf("ckpt=%v: step peak %.1f MiB -> %.1f MiB; live when the backward begins %.1f MiB, the backward's peak %.1f MiB", ckpt, float64(off.peak)/(1<<20), float64(on.peak)/(1<<20), float64(on.atBackward)/(1<<20), float64(on.bwdPeak)/(1<<20))
	}
}

// TestAStepLeavesOnlyItsGradients: after a LoRA training step with
// Tape.ReleaseActivations (dropout on, with each memory saver), every
// tensor the step made has gone back to the backend but the adapters'
// gradients and the per-step constants the model makes outside the tape
// (RoPE's cos and sin for the batch's positions, the positions): nothing
// dead waits for Go's collector, which on a GPU would hold it in the
// allocator until the next collection. Before the backward's temporaries
// (LoRA's dh and its dropout product, the saved inverse RMS, log-sum-exp
// and x·Aᵀ) and the unrecorded ops' outputs (the embeddings' lookup, the
// first block's input norm) were released, a tiny-base step left 58 MiB.
// With an embedding table in another precision than the model computes in
// (a float32 table beside bf16 activations, as NF4 loads leave it on a
// GPU; float64 beside float32 here), the lookup is cast and its first copy
// goes back too.
func TestAStepLeavesOnlyItsGradients(t *testing.T) {
	cases := []struct {
		mem       MemorySavers
		wideTable bool
	}{{}, {mem: MemorySavers{Checkpoint: true}}, {mem: MemorySavers{Checkpoint: true, Offload: true, MLPChunkTokens: 40}}, {wideTable: true}}
	for _, c := range cases {
		mem := c.mem
		be := backendtest.NewCounting()
		const B, T = 2, 48
		m, a, in := tinyLoRAStep(t, be, 0.1, B, T)
		m.Checkpointing, m.OffloadCheckpoints, m.MLPChunkTokens = mem.Checkpoint, mem.Offload, mem.MLPChunkTokens
		if c.wideTable {
			m.Embed = autograd.Frozen(m.Embed.Value.To(tensor.F64), "embed_tokens (float64)")
		}
		start := be.Live()
		tp := autograd.NewTape()
		tp.ReleaseActivations = true
		out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		var grads int64
		for _, p := range a.Params() {
			grads += int64(p.Grad.Numel()) * 4
		}
		constants := int64(2*B*T*(m.Config.HeadDim/2)*4 + B*T*8) // cos, sin; int64 positions
		left := be.Live() - start - grads - 4                    // the loss
		if left > constants {
			t.Errorf("%+v (float64 table %v): the step left %d bytes beyond its gradients, want at most the %d of its constants", mem, c.wideTable, left, constants)
		}
	}
}

// tinyLoRAStep loads tiny-base on be with LoRA r 8 on all seven
// projections (dropout p) and returns a labelled B×T batch of fixed ids.
func tinyLoRAStep(t *testing.T, be tensor.Backend, p float64, B, T int) (*nn.Model, *lora.Adapter, nn.Batch) {
	t.Helper()
	cfg := lora.NewConfig(8, 16, "all-linear")
	cfg.LoraDropout = p
	m, a := loratest.Attached(t, "../assets/models/tiny-base", nn.LoadOptions{KeepBF16: true, Backend: be}, cfg, 1)
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % m.Config.VocabSize)
	}
	return m, a, nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T), Labels: tensor.FromHost(be, tensor.I64, ids, B, T)}
}
