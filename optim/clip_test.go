package optim

import (
	"math"
	"testing"
)

// Gradients (3, 4) and (12): global norm √(9+16+144) = 13.
func TestClipGradNorm(t *testing.T) {
	mk := func() []Param {
		return []Param{
			{Name: "a", Data: make([]float32, 2), Grad: []float32{3, 4}},
			{Name: "b", Data: make([]float32, 1), Grad: []float32{12}},
			{Name: "frozen", Data: make([]float32, 3)},
		}
	}
	ps := mk()
	total, err := ClipGradNorm(ps, 6.5)
	if err != nil {
		t.Fatal(err)
	}
	if total != 13 {
		t.Errorf("total norm %g, want 13", total)
	}
	// scale 6.5/(13+1e-6): (1.5, 2, 6) up to the 1e-6 term (relative 8e-8).
	want := []float32{1.5, 2, 6}
	got := []float32{ps[0].Grad[0], ps[0].Grad[1], ps[1].Grad[0]}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Errorf("clipped grad %d = %g, want %g", i, got[i], want[i])
		}
	}
	if n := GradNorm(ps); math.Abs(n-6.5) > 1e-5 {
		t.Errorf("norm after clipping %g, want 6.5", n)
	}
	ps = mk()
	if total, _ := ClipGradNorm(ps, 20); total != 13 || ps[0].Grad[0] != 3 || ps[1].Grad[0] != 12 {
		t.Errorf("norm below max changed gradients: %v %v", ps[0].Grad, ps[1].Grad)
	}
	if _, err := ClipGradNorm(ps, 0); err == nil {
		t.Error("max norm 0 accepted")
	}
}
