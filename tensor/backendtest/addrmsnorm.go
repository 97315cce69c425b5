package backendtest

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// addRMSNorm checks the fused residual add + RMSNorm: h = a + b and
// y = rmsnorm(h)·w, and the backward dx = dh + the norm's dx, dw (+=),
// against the composite formulas in float64. A backend with the kernels
// (tensor.AddRMSNormBackend) is called directly with NaN-poisoned outputs;
// one without them is checked through tensor.AddRMSNorm's fallback.
func (s *suite) addRMSNorm(t *testing.T) {
	fused, direct := s.b.(tensor.AddRMSNormBackend)
	for _, d := range sizes {
		if d < 3 {
			continue // dx's terms cancel at d = 1 (see rmsnorm)
		}
		a64, a := s.rand(5, d)
		b64, b := s.rand(5, d)
		w64, w := s.rand(d)
		dy64, dy := s.rand(5, d)
		dh64, dh := s.rand(5, d)
		var h, y, inv, dx *tensor.Tensor
		dw := tensor.Zeros(s.b, tensor.F32, d)
		if direct {
			h, y, inv = s.poisoned(tensor.F32, 5, d), s.poisoned(tensor.F32, 5, d), s.poisoned(tensor.F32, 5)
			must(t, fused.AddRMSNorm(h, y, inv, a, b, w, 1e-5))
			dx = s.poisoned(tensor.F32, 5, d)
			must(t, fused.AddRMSNormBackward(dx, dw, dh, dy, h, w, inv))
		} else {
			h, y, inv = tensor.AddRMSNorm(a, b, w, 1e-5)
			dx = tensor.AddRMSNormBackward(dw, dh, dy, h, w, inv)
		}
		h64 := tensor.Add(a64, b64)
		s.compare(fmt.Sprintf("add_rmsnorm h d=%d", d), h, h64, s.tol.Fused)
		s.compare(fmt.Sprintf("add_rmsnorm y d=%d", d), y, rmsnormRef(h64, w64, 1e-5), s.tol.Fused)
		inv64 := tensor.Pow(tensor.AddScalar(tensor.Mean(tensor.Square(h64), -1, true), 1e-5), -0.5)
		g := tensor.Mul(dy64, w64)
		dot := tensor.Sum(tensor.Mul(g, h64), -1, true)
		normDx := tensor.Sub(tensor.Mul(g, inv64), tensor.Mul(h64, tensor.Scale(tensor.Mul(tensor.Mul(tensor.Mul(inv64, inv64), inv64), dot), 1/float64(d))))
		s.compare(fmt.Sprintf("add_rmsnorm dx d=%d", d), dx, tensor.Add(dh64, normDx), s.tol.Fused)
		s.compare(fmt.Sprintf("add_rmsnorm dw d=%d", d), dw, tensor.Sum(tensor.Mul(tensor.Mul(dy64, h64), inv64), 0, false), s.tol.Fused)

		// In place: the sum written over a (AddRMSNormInPlace), the norm
		// then read from it.
		ai := a.Clone()
		hi, yi, invi := tensor.AddRMSNormInPlace(ai, b, w, 1e-5)
		if hi != ai {
			t.Fatalf("add_rmsnorm in place d=%d: h is not a", d)
		}
		s.compare(fmt.Sprintf("add_rmsnorm in place h d=%d", d), hi, h64, s.tol.Fused)
		s.compare(fmt.Sprintf("add_rmsnorm in place y d=%d", d), yi, rmsnormRef(h64, w64, 1e-5), s.tol.Fused)
		s.compare(fmt.Sprintf("add_rmsnorm in place rstd d=%d", d), invi, inv64.Reshape(5), s.tol.Fused)
	}
}
