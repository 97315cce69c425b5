package autograd

import "github.com/ftune/ftune/tensor"

// AddRMSNorm returns h = a + b and y = RMSNorm(h, w) as one node: a
// decoder block's residual add and the norm that reads it. The values and
// gradients are bitwise those of Add followed by RMSNorm (the CPU kernels
// keep the unfused rounding; addition is commutative, so dh + dx equals
// the unfused dx accumulated onto dh). a and b must have one shape and
// dtype; other operands take the unfused ops.
func (tp *Tape) AddRMSNorm(a, b, w *Var, eps float64) (h, y *Var) {
	return tp.addRMSNorm(a, b, w, eps, false)
}

// AddRMSNormInPlace is AddRMSNorm with the sum written over a's storage
// when a is overwritable (see inplace.go: a residual branch's output, which
// no backward reads), else AddRMSNorm. Float addition commutes, so it
// equals AddRMSNorm(b, a) bit for bit too.
func (tp *Tape) AddRMSNormInPlace(a, b, w *Var, eps float64) (h, y *Var) {
	return tp.addRMSNorm(a, b, w, eps, tp.overwritable(a))
}

func (tp *Tape) addRMSNorm(a, b, w *Var, eps float64, inPlace bool) (h, y *Var) {
	if !a.Value.Shape().Equal(b.Value.Shape()) || a.Value.DType() != b.Value.DType() {
		h = tp.Add(a, b)
		return h, tp.RMSNorm(h, w, eps)
	}
	var wv *tensor.Tensor
	if w != nil {
		wv = w.Value
	}
	var hv, yv, inv *tensor.Tensor
	if inPlace {
		hv, yv, inv = tensor.AddRMSNormInPlace(a.Value, b.Value, wv, eps)
	} else {
		hv, yv, inv = tensor.AddRMSNorm(a.Value, b.Value, wv, eps)
	}
	h, y = result(hv), result(yv)
	if !tp.needs(a, b, w) {
		release(inv) // kept only for a backward that will not run
		return h, y
	}
	// The backward keeps h and w, and the norm of h is y bit for bit (the
	// same rounding as the fused pass, on the CPU and in the CUDA
	// kernels): y can be had again (Forget).
	rebuildable(y, func() *tensor.Tensor {
		y, inv := tensor.RMSNorm(hv, wv, eps)
		release(inv) // the backward reads the forward's
		return y
	})
	tp.record(func() {
		var dw *tensor.Tensor
		if w != nil && w.requiresGrad {
			dw = tensor.Zeros(wv.Backend(), wv.DType(), wv.Shape()...)
		}
		var dx *tensor.Tensor
		if y.Grad == nil {
			// Only the residual stream received a gradient.
			dx = h.Grad
		} else {
			dx = tensor.AddRMSNormBackward(dw, h.Grad, y.Grad, hv, wv, inv)
			if dw != nil {
				tp.accumulate(w, dw, true)
			}
		}
		tp.releaseSaved(inv)
		// dx goes to both inputs: copied for one, then owned by the other
		// (h.Grad itself only when the tape may hand it off), which may
		// release it once added.
		fresh := y.Grad != nil || tp.handOff()
		tp.accumulate(b, dx, false)
		tp.accumulate(a, dx, fresh)
	}, h, y)
	return h, y
}
