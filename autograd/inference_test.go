package autograd

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// The lifetime model's forward without a backward, on a nil tape and on an
// inference tape that releases what each block read once the block is
// done: the same logits bit for bit on a backend that poisons what it
// releases (an early release would show), a lower peak, nothing recorded,
// and when the pass ends only its output still allocated. With in-place
// ops (which an inference tape allows on its pass's activations) and with
// the checkpointing a training forward would ask for (which inference
// ignores).
func TestInferencePassReleasesWhatItRead(t *testing.T) {
	for _, variant := range []struct {
		name          string
		inPlace, ckpt bool
	}{{"plain", false, false}, {"in place", true, false}, {"checkpointed", false, true}} {
		t.Run(variant.name, func(t *testing.T) {
			forward := func(tp *Tape) (logits []float32, peak, left int64, released int) {
				be := backendtest.NewCounting()
				m := newLifetimeModel(be)
				m.inPlace = variant.inPlace
				start := be.Live()
				h := m.x
				for range 2 {
					if variant.ckpt {
						h = tp.Checkpoint(m.block, h)[0]
					} else {
						h = m.block(tp, []*Var{h})[0]
					}
					if err := tp.ReleaseRead(h); err != nil {
						t.Fatal(err)
					}
				}
				out := tp.Add(tp.Linear(h, m.head, nil), tp.Reshape(m.bias, 1, m.Out))
				if err := tp.ReleasePass(out); err != nil {
					t.Fatal(err)
				}
				for _, v := range append(m.params(), m.x, m.norm, m.wq, m.wo, m.wg, m.wu, m.wd) {
					if be.Released(v.Value) {
						t.Fatalf("%s (a leaf) was released", v.Name)
					}
					if v.Grad != nil {
						t.Fatalf("%s has a gradient after inference", v.Name)
					}
				}
				if be.Released(out.Value) {
					t.Fatal("the kept output was released")
				}
				if tp.Len() != 0 {
					t.Fatalf("%d nodes recorded in inference", tp.Len())
				}
				return out.Value.F32(), be.Peak() - start, be.Live() - start - int64(out.Value.Numel()*4), tp.Released().Storages
			}
			want, nilPeak, _, _ := forward(nil)
			tp := NewInference()
			got, peak, left, released := forward(tp)
			if !slices.Equal(got, want) {
				t.Fatalf("inference tape logits %v, nil tape %v (bit for bit)", got, want)
			}
			if released < 10 {
				t.Errorf("released %d storages, want each block's intermediates (≥ 10)", released)
			}
			if left != 0 {
				t.Errorf("%d bytes still allocated after the pass besides its output", left)
			}
			if peak >= nilPeak*3/4 {
				t.Errorf("peak %d bytes with releases, %d without: want under 3/4", peak, nilPeak)
			}
			t.Logf("peak %d bytes with releases, %d without; %d storages released", peak, nilPeak, released)
			if tp.Training() {
				t.Error("an inference tape reports Training")
			}
			if err := tp.Backward(Const(tensor.Scalar(tensor.CPUDefault(), tensor.F32, 1))); err == nil || !strings.Contains(err.Error(), "inference tape") {
				t.Errorf("Backward on an inference tape: %v, want a refusal naming it", err)
			}
		})
	}
}

// ReleaseRead keeps what the caller names, views sharing it included, and
// never releases a leaf's storage, even through a view made on the tape or
// when the leaf was made after the tape began; ReleasePass hands the kept
// values to the caller (a later pass on the tape leaves them alone) and
// releases the pass's constants.
func TestInferenceKeepsLeavesViewsAndKept(t *testing.T) {
	be := backendtest.NewCounting()
	tp := NewInference()
	x := Const(tensor.FromHost(be, tensor.F32, []float32{1, 2, 3, 4, 5, 6}, 2, 3)) // a leaf born after the tape's mark
	w := Param(tensor.FromHost(be, tensor.F32, []float32{1, 0, 0, 1, 1, 1}, 2, 3), "w")
	rope := tensor.FromHost(be, tensor.F32, []float32{1, 2}, 2)
	tp.ReleaseAfterBackward(rope)
	xv := tp.Reshape(x, 3, 2)   // a view of a leaf: never released
	y := tp.Linear(x, w, nil)   // [2,2]
	yv := tp.Reshape(y, 4)      // a view of y: keeping yv keeps y
	z := tp.Scale(tp.Exp(y), 2) // exp(y) is read by Scale
	s := tp.Add(tp.Reshape(xv, 6), tp.Reshape(xv, 6))
	if err := tp.ReleaseRead(yv); err != nil {
		t.Fatal(err)
	}
	if be.Released(y.Value) || be.Released(x.Value) || be.Released(w.Value) {
		t.Fatal("a kept view's storage or a leaf was released")
	}
	if be.Released(z.Value) || be.Released(s.Value) {
		t.Fatal("an output nothing read was released")
	}
	if tp.Released().Storages != 1 {
		t.Fatalf("released %d storages, want 1 (exp(y))", tp.Released().Storages)
	}
	if be.Released(rope) {
		t.Fatal("a pass constant was released before the pass ended")
	}
	if err := tp.ReleasePass(y); err != nil {
		t.Fatal(err)
	}
	if !be.Released(rope) {
		t.Fatal("ReleasePass left the pass's constant")
	}
	if be.Released(y.Value) {
		t.Fatal("ReleasePass released the value it was told to keep")
	}
	// A second pass on the tape reads nothing of the first: y is the
	// caller's.
	_ = tp.Scale(x, 3)
	if err := tp.ReleasePass(); err != nil {
		t.Fatal(err)
	}
	if be.Released(y.Value) {
		t.Fatal("a value a pass handed over was released by the next pass")
	}
	if got := yv.Value.F32(); !slices.Equal(got, []float32{1, 6, 4, 15}) {
		t.Fatalf("kept view reads %v after the releases", got)
	}
}

// On a nil tape and a recording tape ReleaseRead and ReleasePass do
// nothing.
func TestReleaseReadOnlyOnInferenceTapes(t *testing.T) {
	for _, tp := range []*Tape{nil, NewTape()} {
		be := backendtest.NewCounting()
		x := Const(tensor.FromHost(be, tensor.F32, []float32{1, 2}, 2))
		y := tp.Exp(tp.Scale(x, 2))
		if err := tp.ReleaseRead(y); err != nil {
			t.Fatal(err)
		}
		if err := tp.ReleasePass(y); err != nil {
			t.Fatal(err)
		}
		if tp.Released().Storages != 0 {
			t.Fatalf("%v tape released %d storages", tp, tp.Released().Storages)
		}
	}
}
