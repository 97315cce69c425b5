package autograd

import (
	"testing"

	"github.com/ftune/ftune/tensor"
)

// Gradients handed to an input without a copy (handOff) must never leave
// two Vars sharing one buffer: each leaf's gradient is changed after the
// backward and the others must not move.
func TestGradHandOffNeverAliases(t *testing.T) {
	for _, retain := range []bool{false, true} {
		a := Param(tensor.FromHost(cpu, tensor.F64, []float64{1, 2, 3, 4}, 2, 2), "a")
		b := Param(tensor.FromHost(cpu, tensor.F64, []float64{5, 6, 7, 8}, 2, 2), "b")
		c := Param(tensor.FromHost(cpu, tensor.F64, []float64{1, 1}, 2), "c")
		tp := NewTape()
		tp.RetainGrads = retain
		s := tp.Add(a, b)                          // g goes to both a and b
		u := tp.Add(s, s)                          // same Var on both sides
		r := tp.Reshape(u, 4)                      // a view of u's gradient goes back
		p := tp.Permute(tp.Reshape(r, 2, 2), 1, 0) // a transposed view
		q := tp.Add(p, c)                          // broadcast: c's gradient is reduced
		loss := tp.SumAll(tp.Mul(q, Const(tensor.FromHost(cpu, tensor.F64, []float64{1, 2, 3, 4}, 2, 2))))
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		// d loss/d a = 2·Rᵀ (R = [[1,2],[3,4]] applied to the transpose).
		want := []float64{2, 6, 4, 8}
		for _, v := range []*Var{a, b} {
			if got := v.Grad.F64(); !equalF64(got, want) {
				t.Fatalf("retain=%v: %s grad %v, want %v", retain, v.Name, got, want)
			}
		}
		if got := c.Grad.F64(); !equalF64(got, []float64{4, 6}) {
			t.Fatalf("retain=%v: c grad %v, want [4 6]", retain, got)
		}
		tensor.ScaleInPlace(a.Grad, 100)
		if got := b.Grad.F64(); !equalF64(got, want) {
			t.Fatalf("retain=%v: b's gradient changed with a's (shared buffer): %v", retain, got)
		}
		if retain {
			if got := s.Grad.F64(); !equalF64(got, want) {
				t.Fatalf("retained intermediate gradient changed with a's: %v", got)
			}
			// Retained gradients must stay apart too: u's must not be a
			// view of r's.
			tensor.ScaleInPlace(u.Grad, 100)
			if got := r.Grad.F64(); !equalF64(got, []float64{1, 3, 2, 4}) {
				t.Fatalf("retained gradient of the reshape changed with its input's: %v", got)
			}
		}
	}
}

func equalF64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
