package autograd

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// TestOffloadMovesOnlyWhatOnlyARecomputeReads: a checkpointed region's
// output read by nothing but the next region (a lazy use) goes to host
// memory and comes back for that region's backward, the gradients bit for
// bit the same; one that another op also reads, one kept by the caller, a
// leaf and a value on a tape that records nothing stay where they are.
func TestOffloadMovesOnlyWhatOnlyARecomputeReads(t *testing.T) {
	region := func(tp *Tape, in []*Var) []*Var { return []*Var{tp.Silu(tp.Scale(in[0], 1.5))} }
	step := func(offload bool, extraUse, keep bool) (grad []float32, host int64) {
		be := backendtest.NewCounting()
		w := Param(tensor.FromHost(be, tensor.F32, []float32{0.3, -1.2, 2.5, 0.7}, 4), "w")
		tp := NewTape()
		tp.ReleaseActivations = true
		h := tp.Checkpoint(region, w)[0]
		out := tp.Checkpoint(region, h)[0]
		loss := tp.SumAll(out)
		if extraUse {
			loss = tp.Add(loss, tp.SumAll(h))
		}
		if keep {
			tp.Keep(h)
		}
		if offload {
			if err := tp.Offload(h, w); err != nil {
				t.Fatal(err)
			}
		}
		host = be.Host()
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		if be.Host() != 0 && host != 0 {
			t.Error("an offloaded value was not brought back")
		}
		return w.Grad.F32(), host
	}
	want, _ := step(false, false, false)
	got, host := step(true, false, false)
	if !slices.Equal(got, want) || host != 16 {
		t.Errorf("offloaded: gradient %v (want %v), %d bytes in host memory (want the 16 of h)", got, want, host)
	}
	for _, c := range []struct {
		name           string
		extraUse, keep bool
	}{{"read by another op", true, false}, {"kept", false, true}} {
		want, _ := step(false, c.extraUse, c.keep)
		got, host := step(true, c.extraUse, c.keep)
		if !slices.Equal(got, want) || host != 0 {
			t.Errorf("%s: %d bytes offloaded, gradient %v (want %v)", c.name, host, got, want)
		}
	}
	if err := (*Tape)(nil).Offload(&Var{}); err != nil {
		t.Errorf("a nil tape: %v", err)
	}
}

// TestOffloadPrefetchesTheNextRestore: restoring an offloaded value starts
// the copy back of the one offloaded before it, which the backward of a
// chain of checkpointed regions reads next, so that copy runs while this
// region is computed again; the gradients stay the same.
func TestOffloadPrefetchesTheNextRestore(t *testing.T) {
	be := backendtest.NewCounting()
	var hostAtCall []int64
	region := func(tp *Tape, in []*Var) []*Var {
		hostAtCall = append(hostAtCall, be.Host())
		return []*Var{tp.Silu(tp.Scale(in[0], 1.5))}
	}
	run := func(offload bool) []float32 {
		hostAtCall = nil
		w := Param(tensor.FromHost(be, tensor.F32, []float32{0.3, -1.2, 2.5, 0.7}, 4), "w")
		tp := NewTape()
		tp.ReleaseActivations = true
		h1 := tp.Checkpoint(region, w)[0]
		h2 := tp.Checkpoint(region, h1)[0]
		h3 := tp.Checkpoint(region, h2)[0]
		out := tp.Checkpoint(region, h3)[0]
		if offload {
			if err := tp.Offload(h1, h2, h3); err != nil {
				t.Fatal(err)
			}
		}
		if err := tp.Backward(tp.SumAll(out)); err != nil {
			t.Fatal(err)
		}
		return w.Grad.F32()
	}
	want := run(false)
	got := run(true)
	if !slices.Equal(got, want) {
		t.Errorf("gradient %v, want %v", got, want)
	}
	// Four first forwards, then the recomputes, last region first: h3
	// restored and h2 prefetched leave h1's 16 bytes in host memory; then
	// nothing.
	if wantHost := []int64{0, 0, 0, 0, 16, 0, 0, 0}; !slices.Equal(hostAtCall, wantHost) {
		t.Errorf("host bytes at each region call %v, want %v", hostAtCall, wantHost)
	}
}

// TestOffloadMovesTheAdoptedInput: the output of an op that records
// nothing (the frozen embeddings' lookup), adopted by the Checkpoint that
// reads it, goes to host memory too; the recompute gets it back, the
// gradients are bit for bit the same, and the copy brought back is
// released after that node's backward as the original would have been.
func TestOffloadMovesTheAdoptedInput(t *testing.T) {
	step := func(offload bool) (grad []float32, host, left int64) {
		be := backendtest.NewCounting()
		w := Param(tensor.FromHost(be, tensor.F32, []float32{0.3, -1.2, 2.5, 0.7}, 4), "w")
		table := Const(tensor.FromHost(be, tensor.F32, []float32{1, 2, -3, 0.5}, 4))
		tp := NewTape()
		tp.ReleaseActivations = true
		before := be.Live()
		x := tp.Scale(table, 2) // records nothing: no input needs a gradient
		h := tp.Checkpoint(func(tp *Tape, in []*Var) []*Var { return []*Var{tp.Silu(tp.Mul(in[0], w))} }, x)[0]
		if offload {
			if err := tp.Offload(x); err != nil {
				t.Fatal(err)
			}
		}
		host = be.Host()
		if err := tp.Backward(tp.SumAll(h)); err != nil {
			t.Fatal(err)
		}
		grad = w.Grad.F32()
		return grad, host, be.Live() - before - int64(len(grad))*4
	}
	want, _, wantLeft := step(false)
	got, host, left := step(true)
	if !slices.Equal(got, want) || host != 16 {
		t.Errorf("offloaded: gradient %v (want %v), %d bytes in host memory (want the 16 of x)", got, want, host)
	}
	if left != wantLeft {
		t.Errorf("after the backward %d bytes left besides the gradient, %d without offload", left, wantLeft)
	}
}
