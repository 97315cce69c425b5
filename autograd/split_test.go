package autograd

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// Split's backward (Phi-3's fused qkv_proj and gate_up_proj outputs cut
// into q, k, v and gate, up) against the same graph on three separate
// tensors (Llama's layout): the pieces' gradients must land in one
// whole-width buffer, so the fused layout allocates at most that one
// buffer more. Each piece used to allocate its own zero-padded whole-width
// gradient (3 whole widths for a 3-way split, 2 of them added and dropped).
func TestSplitBackwardAllocatesOneGradient(t *testing.T) {
	const rows, w = 64, 2048
	whole := float64(rows * 3 * w * 4) // bytes of one whole-width float32 gradient
	r := rand.New(rand.NewPCG(5, 5))
	weights := make([]*tensor.Tensor, 3)
	for i := range weights {
		weights[i] = randF32(r, rows, w)
	}
	// loss = Σ_i sum(piece_i · R_i), each piece 2·x_i.
	loss := func(tp *Tape, pieces []*Var) *Var {
		var l *Var
		for i, p := range pieces {
			s := tp.SumAll(tp.Mul(p, Const(weights[i])))
			if l == nil {
				l = s
			} else {
				l = tp.Add(l, s)
			}
		}
		return l
	}
	backwardBytes := func(build func(tp *Tape) *Var) float64 {
		tp := NewTape()
		l := build(tp)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := tp.Backward(l); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc - before.TotalAlloc)
	}
	fusedX := Param(randF32(r, rows, 3*w), "qkv")
	fused := backwardBytes(func(tp *Tape) *Var {
		return loss(tp, tp.Split(tp.Scale(fusedX, 2), -1, w, w, w))
	})
	sep := make([]*Var, 3)
	for i := range sep {
		sep[i] = Param(fusedX.Value.Narrow(-1, i*w, w).Contiguous(), "part")
	}
	separate := backwardBytes(func(tp *Tape) *Var {
		pieces := make([]*Var, 3)
		for i, x := range sep {
			pieces[i] = tp.Scale(x, 2)
		}
		return loss(tp, pieces)
	})
	extra := (fused - separate) / whole
	t.Logf("backward allocations: fused %.2f, separate %.2f whole widths (%.0f bytes each)", fused/whole, separate/whole, whole)
	if extra > 1.25 {
		t.Fatalf("a 3-way split's backward allocates %.2f whole-width gradients more than three separate tensors, want at most 1", extra)
	}
	// Same gradients, bit for bit: the pieces' columns hold exactly what
	// the separate tensors got.
	for i, x := range sep {
		got := fusedX.Grad.Narrow(-1, i*w, w).Contiguous().F32()
		want := x.Grad.F32()
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("piece %d [%d]: fused gradient %v, separate %v", i, j, got[j], want[j])
			}
		}
	}
}

// Pieces that overlap, a piece used twice, and a parameter whose gradient
// accumulates over two Backward calls: every contribution is added into
// the one buffer.
func TestNarrowBackwardAccumulates(t *testing.T) {
	x := Param(tensor.FromHost(cpu, tensor.F64, []float64{1, 2, 3, 4, 5, 6}, 1, 6), "x")
	for step := 1; step <= 2; step++ {
		tp := NewTape()
		a := tp.Narrow(x, 1, 0, 4) // columns 0-3
		b := tp.Narrow(x, 1, 2, 4) // columns 2-5
		c := tp.Scale(tp.Narrow(x, 1, 5, 1), 3)
		l := tp.Add(tp.Add(tp.SumAll(a), tp.SumAll(tp.Scale(b, 10))), tp.Add(tp.SumAll(c), tp.SumAll(c)))
		if err := tp.Backward(l); err != nil {
			t.Fatal(err)
		}
		per := []float64{1, 1, 11, 11, 10, 16}
		got := x.Grad.F64()
		for i, v := range per {
			if got[i] != float64(step)*v {
				t.Fatalf("after %d backward calls: grad %v, want %v times %v", step, got, step, per)
			}
		}
	}
}

func randF32(r *rand.Rand, shape ...int) *tensor.Tensor {
	d := make([]float32, tensor.Shape(shape).Numel())
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return tensor.FromHost(cpu, tensor.F32, d, shape...)
}

// Concat's backward (Phi-4-mini's partial rotary joins the rotated and
// passed-through parts of each head) copies each last-axis piece of the
// gradient out once, and that copy becomes the piece's gradient: one whole
// width more than the same graph on the two pieces separately. The copy
// used to be cloned again (two more).
func TestConcatBackwardCopiesOnce(t *testing.T) {
	const rows, w = 64, 4096
	whole := float64(rows * w * 4)
	r := rand.New(rand.NewPCG(6, 6))
	a, b := Param(randF32(r, rows, w/4), "rot"), Param(randF32(r, rows, 3*w/4), "pass")
	R := randF32(r, rows, w)
	Ra, Rb := R.Narrow(-1, 0, w/4).Contiguous(), R.Narrow(-1, w/4, 3*w/4).Contiguous()
	backwardBytes := func(build func(tp *Tape) *Var) float64 {
		tp := NewTape()
		l := build(tp)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := tp.Backward(l); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / whole
	}
	joined := backwardBytes(func(tp *Tape) *Var {
		return tp.SumAll(tp.Mul(tp.Concat(-1, tp.Scale(a, 2), tp.Scale(b, 2)), Const(R)))
	})
	ga, gb := a.Grad.Clone(), b.Grad.Clone()
	a.ZeroGrad()
	b.ZeroGrad()
	separate := backwardBytes(func(tp *Tape) *Var {
		return tp.Add(tp.SumAll(tp.Mul(tp.Scale(a, 2), Const(Ra))), tp.SumAll(tp.Mul(tp.Scale(b, 2), Const(Rb))))
	})
	t.Logf("backward allocations: concat %.2f, separate %.2f whole widths", joined, separate)
	if extra := joined - separate; extra > 1.25 {
		t.Fatalf("a last-axis Concat's backward allocates %.2f whole widths more than its pieces apart, want 1 (one copy of each piece's gradient)", extra)
	}
	for _, c := range []struct{ got, want *tensor.Tensor }{{ga, a.Grad}, {gb, b.Grad}} {
		g, w := c.got.F32(), c.want.F32()
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("gradient [%d]: through Concat %v, apart %v", i, g[i], w[i])
			}
		}
	}
}
