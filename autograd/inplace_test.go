package autograd

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// TestInPlaceOpsKeepResultsAndLowerThePeak: the lifetime model with RoPE
// written over the query projection and the residual sums over the output
// projection's and the MLP's outputs (AddRMSNormInPlace against Add then
// RMSNorm) gives the out-of-place model's loss, logits and gradients bit
// for bit, with and without releasing activations (released storage is
// poisoned: a backward reading an overwritten or released buffer shows)
// and with and without checkpointing. Without checkpointing, the bytes
// live when the backward begins are lower by exactly the three [N,D]
// buffers per block it no longer holds, and so (with release) is the
// step's peak at least by one of them: in this toy the peak falls inside
// the backward, where the last block's buffers are already gone.
func TestInPlaceOpsKeepResultsAndLowerThePeak(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		for _, release := range []bool{false, true} {
			run := func(inPlace bool) (loss float64, logits []float32, grads [][]float32, atBackward, peak int64) {
				be := backendtest.NewCounting()
				m := newLifetimeModel(be)
				m.inPlace = inPlace
				start := be.Live()
				m.forwardEnd = func() { atBackward = be.Live() - start }
				loss, logits, grads, _ = m.step(t, release, ckpt)
				return loss, logits, grads, atBackward, be.Peak() - start
			}
			wantLoss, wantLogits, wantGrads, liveOut, peakOut := run(false)
			loss, logits, grads, liveIn, peakIn := run(true)
			if loss != wantLoss || !slices.Equal(logits, wantLogits) {
				t.Errorf("ckpt=%v release=%v: loss %v logits %v in place, want %v %v", ckpt, release, loss, logits, wantLoss, wantLogits)
			}
			for i := range grads {
				if !slices.Equal(grads[i], wantGrads[i]) {
					t.Errorf("ckpt=%v release=%v: gradient %d in place %v, want %v", ckpt, release, i, grads[i], wantGrads[i])
				}
			}
			if !ckpt {
				// Two blocks, each without a [N,D] query, output
				// projection and MLP output held to the backward.
				m := newLifetimeModel(backendtest.NewCounting())
				buf := int64(m.B * m.T * m.D * 4)
				if liveOut-liveIn != 6*buf {
					t.Errorf("release=%v: live at the backward %d B in place, %d B out of place: want %d B lower", release, liveIn, liveOut, 6*buf)
				}
				if release && peakOut-peakIn < buf {
					t.Errorf("peak live %d B in place, %d B out of place: want at least %d B lower", peakIn, peakOut, buf)
				}
				t.Logf("release=%v: live at the backward %d -> %d B, peak %d -> %d B", release, liveOut, liveIn, peakOut, peakIn)
			}
		}
	}
}

// TestInPlaceOpsLeaveWhatTheyMayNotOverwrite: a parameter, a constant made
// before the tape, a Kept activation and anything on a nil tape are never
// written over; the ops then return new storage with the same values.
func TestInPlaceOpsLeaveWhatTheyMayNotOverwrite(t *testing.T) {
	be := tensor.CPUDefault()
	vals := func(n int) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(i%7) - 2.5
		}
		return d
	}
	cos := tensor.FromHost(be, tensor.F32, vals(2*3*2), 2, 3, 2)
	sin := tensor.FromHost(be, tensor.F32, vals(2*3*2), 2, 3, 2)
	mk := func() *tensor.Tensor { return tensor.FromHost(be, tensor.F32, vals(2*3*1*4), 2, 3, 1, 4) }

	tp := NewTape()
	kept := tp.Scale(Param(mk(), "p2"), 1)
	tp.Keep(kept)
	for name, x := range map[string]*Var{"param": Param(mk(), "p"), "const": Const(mk()), "kept": kept} {
		before := x.Value.F32()
		r := tp.RoPEInPlace(x, cos, sin)
		s := tp.AddInPlace(x, Const(mk()))
		if !slices.Equal(x.Value.F32(), before) {
			t.Errorf("%s: overwritten", name)
		}
		if r.Value.Storage() == x.Value.Storage() || s.Value.Storage() == x.Value.Storage() {
			t.Errorf("%s: result shares its storage", name)
		}
		if want := tensor.RoPE(x.Value, cos, sin, false).F32(); !slices.Equal(r.Value.F32(), want) {
			t.Errorf("%s: RoPEInPlace %v, RoPE %v", name, r.Value.F32(), want)
		}
	}
	var nilTape *Tape
	x := tp.Scale(Param(mk(), "p3"), 1) // an activation, but no tape to vouch for it
	before := x.Value.F32()
	nilTape.RoPEInPlace(x, cos, sin)
	nilTape.AddInPlace(x, Const(mk()))
	if !slices.Equal(x.Value.F32(), before) {
		t.Error("a nil tape overwrote its input")
	}
	// And an activation of this tape is overwritten.
	y := tp.Scale(Param(mk(), "p4"), 1)
	if r := tp.RoPEInPlace(y, cos, sin); r.Value.Storage() != y.Value.Storage() {
		t.Error("an activation of the tape was not rotated in place")
	}
}
