package autograd

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// TestForgetComputesAgainBitForBit: forgetting the SwiGLU activation after
// the LoRA down projection read it gives the same loss, logits and
// gradients bit for bit (the backward computes it again with the same
// kernel on the same inputs; released storage is poisoned, so a read of
// the forgotten buffer would show), with and without release and
// checkpointing. With release and without checkpointing, the bytes live
// when the backward begins are lower by exactly one [N,F] buffer per block,
// and the step leaves no more live than before (the copy computed again is
// released with the SwiGLU node's outputs).
func TestForgetComputesAgainBitForBit(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		for _, release := range []bool{false, true} {
			run := func(forget bool) (loss float64, logits []float32, grads [][]float32, atBackward, after int64) {
				be := backendtest.NewCounting()
				m := newLifetimeModel(be)
				m.inPlace, m.forget = true, forget
				start := be.Live()
				m.forwardEnd = func() { atBackward = be.Live() - start }
				loss, logits, grads, _ = m.step(t, release, ckpt)
				return loss, logits, grads, atBackward, be.Live() - start
			}
			wantLoss, wantLogits, wantGrads, liveKept, afterKept := run(false)
			loss, logits, grads, liveForgot, afterForgot := run(true)
			if loss != wantLoss || !slices.Equal(logits, wantLogits) {
				t.Errorf("ckpt=%v release=%v: loss %v logits %v forgetting, want %v %v", ckpt, release, loss, logits, wantLoss, wantLogits)
			}
			for i := range grads {
				if !slices.Equal(grads[i], wantGrads[i]) {
					t.Errorf("ckpt=%v release=%v: gradient %d forgetting %v, want %v", ckpt, release, i, grads[i], wantGrads[i])
				}
			}
			if release && !ckpt {
				m := newLifetimeModel(backendtest.NewCounting())
				buf := int64(m.B * m.T * m.F * 4)
				if liveKept-liveForgot != 2*buf {
					t.Errorf("live at the backward %d B forgetting, %d B holding: want %d B lower", liveForgot, liveKept, 2*buf)
				}
				t.Logf("live at the backward %d -> %d B", liveKept, liveForgot)
			}
			// The copies computed again are released with the SwiGLU
			// nodes' outputs: the step leaves what it left before
			// (gradients, which go to the collector, and the kept logits).
			if release && afterForgot != afterKept {
				t.Errorf("ckpt=%v: %d B live after the step forgetting, %d B holding", ckpt, afterForgot, afterKept)
			}
		}
	}
}

// TestForgetLeavesWhatItMayNotDrop: a value that an op read eagerly (an
// elementwise op, a view), a kept value, a value with no rebuild and any
// value on a nil tape keep their storage; the results are unchanged.
func TestForgetLeavesWhatItMayNotDrop(t *testing.T) {
	be := backendtest.NewCounting()
	mk := func(seed float32) *tensor.Tensor {
		d := make([]float32, 4*6)
		for i := range d {
			d[i] = float32(i%5)*0.25 - seed
		}
		return tensor.FromHost(be, tensor.F32, d, 4, 6)
	}
	w := Frozen(mk(0.3).Narrow(0, 0, 3).Contiguous(), "w") // [3,6]
	p := Param(mk(0.1), "p")

	tp := NewTape()
	tp.ReleaseActivations = true
	act := func() *Var { return tp.SwiGLU(tp.Scale(p, 1), tp.Scale(p, 2)) }

	eager := act()
	tp.Linear(eager, w, nil)
	tp.Mul(eager, eager) // reads eager's value in its backward
	viewed := act()
	tp.Reshape(viewed, 6, 4)
	kept := act()
	tp.Linear(kept, w, nil)
	tp.Keep(kept)
	plain := tp.Scale(p, 3) // no rebuild
	tp.Linear(plain, w, nil)
	unused := act() // no recorded use at all
	lazy := act()
	y := tp.Linear(lazy, w, nil)

	tp.Forget(eager, viewed, kept, plain, unused, lazy)
	for name, v := range map[string]*Var{"eager": eager, "viewed": viewed, "kept": kept, "plain": plain, "unused": unused} {
		if v.Value == nil || be.Released(v.Value) {
			t.Errorf("%s was forgotten", name)
		}
	}
	if lazy.Value != nil {
		t.Error("a value read only lazily was not forgotten")
	}
	if !lazy.Shape().Equal(tensor.Shape{4, 6}) {
		t.Errorf("forgotten shape %v", lazy.Shape())
	}

	var nilTape *Tape
	x := act()
	nilTape.Forget(x)
	if x.Value == nil {
		t.Error("a nil tape forgot a value")
	}
	if err := tp.Backward(tp.MeanAll(y)); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseGradientsAsReplayDropsThem: with release, each output's
// gradient goes back to the backend once its node has run (unless an input
// or a parameter took it over), so the backward adds little to what the
// forward left live; results are unchanged (TestReleaseActivations...
// compares them bit for bit).
func TestReleaseGradientsAsReplayDropsThem(t *testing.T) {
	be := backendtest.NewCounting()
	m := newLifetimeModel(be)
	m.inPlace, m.forget = true, true
	start := be.Live()
	var atBackward int64
	m.forwardEnd = func() { atBackward = be.Live() - start }
	m.step(t, true, false)
	peak := be.Peak() - start
	// Measured 1.24x; 1.58x when gradients waited for the collector.
	if float64(peak) > 1.35*float64(atBackward) {
		t.Errorf("step peak %d B, %d B live when the backward began: want at most 1.35x", peak, atBackward)
	}
	t.Logf("live at the backward %d B, step peak %d B", atBackward, peak)
}

// TestCheckpointReleasesItsFirstForward: with release, a checkpointed
// region's first forward gives back what it made (it recorded nothing)
// but its outputs, so the backward begins with little more than the
// blocks' outputs; the results are those of the uncheckpointed step (bit
// for bit: TestReleaseActivationsLowersPeakAndKeepsResults).
func TestCheckpointReleasesItsFirstForward(t *testing.T) {
	atBackward := func(ckpt bool) int64 {
		be := backendtest.NewCounting()
		m := newLifetimeModel(be)
		m.inPlace, m.forget = true, true
		start := be.Live()
		var live int64
		m.forwardEnd = func() { live = be.Live() - start }
		m.step(t, true, ckpt)
		return live
	}
	plain, ckpt := atBackward(false), atBackward(true)
	// The block outputs and the head's tensors: 1496 against 10520 B (2072
	// against 10712 B while the regions' ops kept their norm statistics,
	// log-sum-exp and LoRA x·Aᵀ, and 14168 B when the regions' activations
	// were left to the collector).
	if ckpt > plain/4 {
		t.Errorf("live at the backward %d B checkpointed, %d B not: want at most a quarter", ckpt, plain)
	}
	t.Logf("live at the backward %d B checkpointed, %d B not", ckpt, plain)
}

// The fused loss's default chunk keeps one chunk's logits within 64 MiB
// of float32, between 128 and 1024 rows.
func TestLossChunkRows(t *testing.T) {
	for v, want := range map[int]int{4096: 1024, 16384: 1024, 49152: 341, 128256: 130, 1 << 22: 128} {
		if got := LossChunkRows(v); got != want {
			t.Errorf("vocabulary %d: %d rows, want %d", v, got, want)
		}
	}
}

// TestUnrecordedOpsReleaseWhatOnlyTheirBackwardReads: an op that records
// nothing (inference, or a checkpointed region's first forward) gives back
// at once what it made for its backward — the norms' inverse RMS,
// attention's log-sum-exp, LoRA's x·Aᵀ — so the bytes it leaves live are
// its outputs' exactly, instead of small tensors waiting for the collector
// (on a GPU, every generated token and every checkpointed block).
func TestUnrecordedOpsReleaseWhatOnlyTheirBackwardReads(t *testing.T) {
	be := backendtest.NewCounting()
	const N, D, R = 6, 8, 4 // rows, width, LoRA rank
	c := func(v float64, shape ...int) *Var { return Const(tensor.Full(be, tensor.F32, v, shape...)) }
	x, w := c(0.5, N, D), c(1.5, D)
	qkv := c(0.25, 1, N, 2, D/2)
	wl, a, b := c(0.3, D, D), c(0.1, R, D), c(0.2, D, R)
	bytes := func(vs ...*Var) (n int64) {
		for _, v := range vs {
			n += int64(v.Value.Numel()) * 4
		}
		return n
	}
	for _, op := range []struct {
		name string
		run  func() []*Var
	}{
		{"RMSNorm", func() []*Var { return []*Var{(*Tape)(nil).RMSNorm(x, w, 1e-6)} }},
		{"AddRMSNorm", func() []*Var { h, y := (*Tape)(nil).AddRMSNorm(x, x, w, 1e-6); return []*Var{h, y} }},
		{"Attention", func() []*Var {
			return []*Var{(*Tape)(nil).Attention(qkv, qkv, qkv, tensor.AttentionParams{Scale: 0.5, Causal: true})}
		}},
		{"LoRALinear", func() []*Var { return []*Var{(*Tape)(nil).LoRALinear(x, wl, nil, a, b, 2, nil)} }},
	} {
		before := be.Live()
		outs := op.run()
		if got, want := be.Live()-before, bytes(outs...); got != want {
			t.Errorf("%s: %d bytes left live, want its outputs' %d", op.name, got, want)
		}
	}
}
